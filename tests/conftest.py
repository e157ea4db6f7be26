"""Gives :mod:`tests.venvs` the terminal, to announce the venvs it makes while output is captured."""
from tests import venvs


def pytest_configure(config):
    venvs._config = config
