"""Turning what names a target into a :class:`~.kernel.KernelTarget`, and the targets of a session.

A target is named by, in this order of lookup (:meth:`Targets.get`):

1. an alias (:meth:`Targets.alias`, ``%cloudpickle_target NAME SPEC``);
2. ``"local"`` / ``"local:NAME"``: a kernel started on this interpreter, one per name, kept for the
   session and shut down by :meth:`Targets.close` (the extension's unload) or at exit;
3. a jupyter_client ``KernelManager`` or ``KernelClient``, given itself or as the name of a
   variable of the namespace holding it (checked before fragments: a variable named ``k`` is
   meant, not every connection file whose name holds a ``k``);
4. a path to a kernel connection file, or a kernel id / file-name fragment found in the Jupyter
   runtime folder (``jupyter_client.find_connection_file``, as ``jupyter console --existing``);
5. a Dask cluster (:func:`dask_cluster`, looked up right after aliases): a ``distributed.Client``,
   given itself or as the name of a variable holding it, or a scheduler address ``tcp://HOST:PORT`` (or
   ``dask://HOST:PORT``), for which the target makes a Client of its own (:mod:`.dask`).

:func:`connect` opens a new target each time (a script's own kernel); :class:`Targets` reuses
the one open for a name while its kernel lives. Plain Python: the magics only parse and delegate.
Every failure to find or reach a kernel is a :class:`TargetError` with a one-line message.
"""
import atexit
import json
import os
import sys
from collections import namedtuple

from . import TargetError


def connect(target="local", *, timeout=None, startup_timeout=60, namespace=None):
    """A new :class:`~.kernel.KernelTarget` for ``target``; ``timeout`` bounds each request.

    ``"local"`` starts a kernel that the target owns (shut down by ``close()`` or at exit); a
    connection file, kernel id, ``KernelManager`` or ``KernelClient`` names a running kernel that
    stays up. ``namespace`` is where a variable name is looked up.
    """
    return _open(target, namespace, timeout, startup_timeout)[1]


def _open(spec, namespace, timeout, startup_timeout):
    """``(kernel shown in listings, KernelTarget)`` for ``spec`` (not an alias)."""
    cluster = dask_cluster(spec, namespace)
    if cluster is not None:
        from .dask import open_cluster

        return open_cluster(cluster, timeout=timeout, connect_timeout=startup_timeout,
                            name=_shown(spec))
    from jupyter_client import KernelClient, KernelManager

    from .channels import zeromq

    if is_local(spec):
        channel = zeromq.start_local(startup_timeout)
        target = _target(channel, timeout=timeout, name=spec, startup_timeout=startup_timeout)
        atexit.register(target.close)
        return channel.kernel, target
    obj = spec
    if isinstance(spec, str) and spec.isidentifier() and namespace is not None and isinstance(
            namespace.get(spec), (KernelManager, KernelClient)):
        obj = namespace[spec]
    if isinstance(obj, KernelManager):
        if not obj.is_alive():
            raise TargetError(f"the kernel of {_shown(spec)} (a KernelManager) is not running")
        kernel = obj.kernel_id or os.path.basename(obj.connection_file)
        channel = zeromq.connect(obj.get_connection_info(), startup_timeout, kernel, obj)
    elif isinstance(obj, KernelClient):
        kernel = os.path.basename(obj.connection_file) or "(a KernelClient)"
        channel = zeromq.connect(obj.get_connection_info(), startup_timeout, kernel)
    elif not isinstance(spec, str) or not spec:
        raise TargetError(f"unknown target {spec!r}: expected 'local', 'local:NAME', a connection "
                          f"file, a kernel id, a KernelManager or a KernelClient")
    else:
        path = connection_file(spec)
        kernel = os.path.basename(path)
        channel = zeromq.connect(read_connection_file(path), startup_timeout, kernel)
    return kernel, _target(channel, timeout=timeout, name=_shown(spec),
                           startup_timeout=startup_timeout)


def _target(channel, **options):
    """``KernelTarget(channel, ...)``; if that fails (another Python, no agent...), the channel is
    closed (a kernel started for it is shut down)."""
    from .kernel import KernelTarget

    try:
        return KernelTarget(channel, **options)
    except BaseException:
        channel.close()
        raise


def is_local(spec):
    return isinstance(spec, str) and (spec == "local" or spec.startswith("local:"))


def dask_cluster(spec, namespace=None):
    """The Dask cluster ``spec`` names, if it names one: a scheduler address (``dask://`` given as
    ``tcp://``), or a ``distributed.Client`` (itself, or held by a variable of ``namespace``)."""
    if isinstance(spec, str):
        if spec.startswith(("tcp://", "dask://")):
            return "tcp://" + spec.partition("://")[2]
        if spec.isidentifier() and namespace is not None:
            spec = namespace.get(spec)
    distributed = sys.modules.get("distributed")  # a Client exists only once it is imported
    return spec if distributed is not None and isinstance(spec, distributed.Client) else None


def connection_file(spec):
    """The connection file ``spec`` names: a path, or a fragment of a file's name in the working
    folder or the Jupyter runtime folder (the most recently used one if several match)."""
    from jupyter_client import find_connection_file
    from jupyter_core.paths import jupyter_runtime_dir

    if os.path.isfile(spec):
        return os.path.abspath(spec)
    if os.sep in spec or spec.endswith(".json"):
        raise TargetError(f"no such connection file: {spec}")
    try:
        return find_connection_file(spec)
    except OSError:
        raise TargetError(f"no kernel {spec!r}: not an alias, 'local', a connection file, a "
                          f"kernel in {jupyter_runtime_dir()}, or a variable holding a "
                          f"KernelManager or KernelClient") from None


def read_connection_file(path):
    """The connection info in ``path``, or a one-line :class:`TargetError` saying what is wrong."""
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, ValueError) as exc:
        raise TargetError(f"{path} is not a kernel connection file: {exc}") from None
    missing = [key for key in ("shell_port", "iopub_port", "hb_port", "ip", "key")
               if not isinstance(info, dict) or key not in info]
    if missing:
        raise TargetError(f"{path} is not a kernel connection file: no {', '.join(missing)}")
    return info


def _shown(spec):
    return spec if isinstance(spec, str) else type(spec).__name__


_Open = namedtuple("_Open", "names kernel target")
Row = namedtuple("Row", "name kernel python alive")


class Targets:
    """The targets of one session: aliases, and one open :class:`~.kernel.KernelTarget` per
    kernel, reused by every later :meth:`get` while that kernel lives.

    ``timeout`` bounds each request of the targets opened here (``None``: no limit);
    ``startup_timeout`` bounds starting a local kernel, ``connect_timeout`` reaching a running
    one (a dead kernel named by its connection file is reported after it).
    """

    def __init__(self, *, timeout=None, startup_timeout=60, connect_timeout=10, say=None):
        self.timeout, self.startup_timeout = timeout, startup_timeout
        self.connect_timeout = connect_timeout
        self.say = say or (lambda line: print(f"cloudpickle_ipy: {line}"))
        self.aliases = {}  # alias -> spec
        self._open = {}  # key (local name, connection file, id of an object) -> _Open
        atexit.register(self.close)

    def alias(self, name, spec, namespace=None):
        """Name ``spec`` (anything :meth:`get` takes) ``name`` from now on; a spec that names no
        kernel (a missing connection file, an unknown kernel id) is refused now, not at first use."""
        if not isinstance(name, str) or not name.isidentifier():
            raise TargetError(f"an alias must be an identifier, not {name!r}")
        if is_local(name):
            raise TargetError(f"{name!r} names the local kernel; choose another alias")
        previous = self.aliases.get(name)
        self.aliases[name] = spec
        try:
            self._key(self._resolve(name), namespace)
        except BaseException:
            if previous is None:
                del self.aliases[name]
            else:
                self.aliases[name] = previous
            raise

    def unalias(self, name):
        """Forget alias ``name`` (the kernel it names stays as it is)."""
        if name not in self.aliases:
            raise TargetError(f"{name!r} is not an alias (the aliases: "
                              f"{', '.join(sorted(self.aliases)) or 'none'})")
        del self.aliases[name]
        for opened in self._open.values():
            opened.names.pop(name, None)

    def _resolve(self, spec):
        """What ``spec`` names once aliases are followed."""
        name, seen = spec, set()
        while isinstance(spec, str) and spec in self.aliases:
            if spec in seen:
                raise TargetError(f"the alias {name!r} refers to itself")
            seen.add(spec)
            spec = self.aliases[spec]
        return spec

    def get(self, spec, namespace=None):
        """The open target for ``spec`` (opening it on first use); ``namespace``: where a
        variable holding a KernelManager or KernelClient is looked up. A ``local`` kernel that
        died is replaced by a new one (and said so); another dead kernel is an error."""
        name, spec = spec, self._resolve(spec)
        key, obj = self._key(spec, namespace)
        opened = self._open.get(key)
        if opened is not None:
            if opened.target.alive:
                opened.names.setdefault(_shown(name), None)
                return opened.target
            self._drop(key)
            if not is_local(spec):
                raise TargetError(f"the kernel of {_shown(name)} ({opened.kernel}) is dead")
            self.say(f"the kernel of {_shown(name)} had died (what it held is gone); starting a "
                     f"new one")
        startup = self.startup_timeout if is_local(spec) else self.connect_timeout
        kernel, target = _open(obj, namespace, self.timeout, startup)
        self._open[key] = _Open({_shown(name): None}, kernel, target)
        if not isinstance(obj, str):
            self._open[key].names[f"(object {id(obj):#x})"] = obj  # keeps the id valid
        return target

    def _key(self, spec, namespace):
        """``(key, what to open)``: one key per kernel (or Dask Client) whatever names it."""
        cluster = dask_cluster(spec, namespace)
        if cluster is not None:
            return (cluster if isinstance(cluster, str) else id(cluster)), cluster
        from jupyter_client import KernelClient, KernelManager

        if is_local(spec):
            return spec, spec
        if isinstance(spec, str) and spec.isidentifier() and namespace is not None and isinstance(
                namespace.get(spec), (KernelManager, KernelClient)):
            spec = namespace[spec]
        if isinstance(spec, (KernelManager, KernelClient)):
            return id(spec), spec
        if not isinstance(spec, str) or not spec:
            raise TargetError(f"unknown target {spec!r}")
        return os.path.realpath(connection_file(spec)), spec

    def rows(self):
        """One :class:`Row` per open target (name, kernel, Python, alive; a Dask cluster's kernel
        with its number of workers), then the aliases not used yet."""
        out = []
        for opened in self._open.values():
            names = [n for n, keep in opened.names.items() if keep is None]
            names += [a for a, spec in self.aliases.items() if spec in names and a not in names]
            agent = opened.target.agent or {}
            alive, kernel = opened.target.alive, opened.kernel
            workers = getattr(opened.target, "worker_count", None) if alive else None
            if workers is not None:
                kernel += f" ({workers} worker{'' if workers == 1 else 's'})"
            out.append(Row(", ".join(names), kernel, agent.get("python", "?"), alive))
        used = {n for opened in self._open.values() for n in opened.names}
        out += [Row(a, f"-> {_shown(spec)}", "", None) for a, spec in self.aliases.items()
                if a not in used]
        return out

    def _drop(self, key):
        opened = self._open.pop(key)
        try:
            opened.target.close()
        except Exception:  # a dead kernel's channels: nothing more to release
            pass

    def close(self):
        """Shut down the local kernels and disconnect from the others."""
        atexit.unregister(self.close)
        for key in list(self._open):
            self._drop(key)
