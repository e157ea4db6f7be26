"""Turning what names a target into a :class:`~.kernel.KernelTarget`.

So far: ``"local"`` / ``"local:NAME"`` (a new kernel on this interpreter, owned by the target and
shut down by ``close()`` or at exit), a jupyter_client ``KernelManager`` (its kernel stays up), or a
``KernelClient`` (its connection is reused through a client of our own, so its own replies are
never consumed here). Aliases, connection files and kernel ids are for the extension's targets.
"""
import atexit
import subprocess
import sys
import tempfile

from . import ShipError
from .envelope import PYTHON


def connect(target="local", *, timeout=None, startup_timeout=60):
    """A :class:`~.kernel.KernelTarget` for ``target``; ``timeout`` bounds each request."""
    from jupyter_client import KernelClient, KernelManager

    from .kernel import KernelTarget

    if isinstance(target, str) and (target == "local" or target.startswith("local:")):
        manager, client = start_local_kernel(startup_timeout)
        try:
            kernel = KernelTarget(client, manager, owned=True, timeout=timeout, name=target,
                                  startup_timeout=startup_timeout)
        except BaseException:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
            raise
        atexit.register(kernel.close)
        return kernel
    if isinstance(target, KernelManager):
        if not target.is_alive():
            raise ShipError("the kernel of this KernelManager is not running")
        return KernelTarget(_client(target.get_connection_info(), startup_timeout),
                            target, timeout=timeout, name=target.kernel_id,
                            startup_timeout=startup_timeout)
    if isinstance(target, KernelClient):
        return KernelTarget(_client(target.get_connection_info(), startup_timeout),
                            timeout=timeout, startup_timeout=startup_timeout)
    raise ShipError(f"unknown target {target!r}: expected 'local', 'local:NAME', a KernelManager "
                    f"or a KernelClient")


def _client(info, startup_timeout):
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient()
    client.load_connection_info(info)
    client.start_channels()
    try:
        client.wait_for_ready(timeout=startup_timeout)
    except RuntimeError as exc:
        client.stop_channels()
        raise ShipError(f"the kernel does not answer: {exc}") from None
    return client


def start_local_kernel(startup_timeout=60):
    """Start ``python -m ipykernel_launcher`` on *this* interpreter; return (manager, client).

    The kernel spec is built here rather than looked up: a user-level ``python3`` spec may point
    at another Python. The kernel's own stdout/stderr (log noise, warnings) go to a temporary file,
    shown only if it fails to start; the manager keeps it (a restart launches with it again).
    """
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    class ThisInterpreter(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                    "{connection_file}"],
                              display_name=f"Python {PYTHON}", language="python")

    manager = KernelManager(kernel_name="python3", kernel_spec_manager=ThisInterpreter())
    log = tempfile.TemporaryFile()
    manager.start_kernel(stdout=subprocess.DEVNULL, stderr=log)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=startup_timeout)
    except RuntimeError as exc:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        log.seek(0)
        raise ShipError(f"the local kernel did not start: {exc}\n"
                        f"{log.read()[-2000:].decode(errors='replace')}") from None
    return manager, client
