"""One real local kernel per test module (starting one takes about a second), always shut down."""
import pytest

import cloudpickle_ipy


@pytest.fixture(scope="module")
def kernel():
    target = cloudpickle_ipy.connect("local", timeout=60)
    try:
        yield target
    finally:
        target.close()
