"""A kernel on another Python minor version is refused at connect, before anything is sent to it.

Code pickled by value does not load across minor versions, so the client checks the kernel's Python
first (the bootstrap probe reports it) and raises one error naming both versions. The kernel runs in
``.cache/venvs/kernel-py3.X`` (see :mod:`tests.ship.venvs`) on an interpreter found through pyenv.
"""
import pytest

import cloudpickle_ipy
from cloudpickle_ipy.ship import ShipError
from tests.fresh import pyenv_interpreters
from tests.ship.venvs import HERE, kernel_venv, start_kernel

PREFERRED = ["3.12", "3.13", "3.10", "3.9", "3.11"]


@pytest.fixture(scope="module")
def other_kernel(tmp_path_factory):
    found = pyenv_interpreters()
    others = [v for v in PREFERRED if v in found and v != HERE]
    assert others, f"no CPython other than {HERE} found through pyenv (found: {sorted(found)})"
    version = others[0]
    manager = start_kernel(kernel_venv(f"kernel-py{version}", found[version]),
                           tmp_path_factory.mktemp("other"))
    try:
        yield version, manager
    finally:
        manager.shutdown_kernel(now=True)


def test_other_python_is_refused_before_any_payload(other_kernel):
    version, manager = other_kernel
    with pytest.raises(ShipError, match=rf"the target kernel runs Python {version} and this is "
                                        rf"Python {HERE}: .*start the target kernel on Python "
                                        rf"{HERE}"):
        cloudpickle_ipy.connect(manager, timeout=30)
    # Neither the agent nor the core was sent, and the kernel is untouched.
    client = manager.client()
    client.start_channels()
    try:
        reply = client.execute_interactive(
            "", silent=True, timeout=30, user_expressions={
                "seen": "sorted(n for n in __import__('sys').modules if 'cloudpickle' in n)",
                "python": "'%d.%d' % __import__('sys').version_info[:2]"})
    finally:
        client.stop_channels()
    found = reply["content"]["user_expressions"]
    assert found["seen"]["data"]["text/plain"] == "[]"
    assert found["python"]["data"]["text/plain"] == repr(version)
