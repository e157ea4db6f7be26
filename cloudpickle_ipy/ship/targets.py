"""Turning what names a target into a :class:`~.kernel.KernelTarget`, and the targets of a session.

A target is named by, in this order of lookup (:meth:`Targets.get`):

1. an alias (:meth:`Targets.alias`, ``%cloudpickle_target NAME SPEC``);
2. ``"local"`` / ``"local:NAME"``: a kernel started on this interpreter, one per name, kept for the
   session and shut down by :meth:`Targets.close` (the extension's unload) or at exit;
3. a Jupyter Server, JupyterHub or kernel gateway URL (:mod:`.channels.websocket`): a server's
   (``http(s)://HOST:PORT[/BASE]/[?token=T]``) starts a kernel there, kept for the session and
   shut down like ``local`` (``kernel_name`` picks its spec); a kernel's
   (``.../api/kernels/ID``) names a running kernel that stays up. URLs are shown without token;
4. a jupyter_client ``KernelManager`` or ``KernelClient``, given itself or as the name of a
   variable of the namespace holding it (checked before fragments: a variable named ``k`` is
   meant, not every connection file whose name holds a ``k``);
5. a path to a kernel connection file, or a kernel id / file-name fragment found in the Jupyter
   runtime folder (``jupyter_client.find_connection_file``, as ``jupyter console --existing``);
   with ``ssh="[user@]host[:port]"``, of a kernel on that host, reached through SSH tunnels
   (:mod:`.channels.ssh`).
6. a Dask cluster (:func:`dask_cluster`, looked up right after aliases): a ``distributed.Client``,
   given itself or as the name of a variable holding it, or a scheduler address ``tcp://HOST:PORT``
   (or ``dask://HOST:PORT``), for which the target makes a Client of its own (:mod:`.dask`).

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
from .channels.websocket import is_url, parse_url
from .channels.websocket import shown as shown_url

Remote = namedtuple("Remote", "spec kernel_name ssh")
Remote.__doc__ = "A target with options: the spec of a kernel gateway or SSH host, and how."


def connect(target="local", *, timeout=None, startup_timeout=60, namespace=None,
            kernel_name=None, ssh=None):
    """A new :class:`~.kernel.KernelTarget` for ``target``; ``timeout`` bounds each request.

    ``"local"``, or a server URL, starts a kernel that the target owns (shut down by ``close()``
    or at exit; ``kernel_name``: the server's kernel spec to start); a kernel URL, connection
    file, kernel id, ``KernelManager`` or ``KernelClient`` names a running kernel that stays up;
    ``ssh="[user@]host[:port]"``: the connection file is of a kernel on that host. ``namespace``
    is where a variable name is looked up.
    """
    return _open(Remote(target, kernel_name, ssh), namespace, timeout, startup_timeout)[1]


def _open(spec, namespace, timeout, startup_timeout, say=None):
    """``(kernel shown in listings, KernelTarget)`` for ``spec`` (not an alias)."""
    spec, kernel_name, ssh = _options(spec)
    cluster = dask_cluster(spec, namespace)
    if cluster is not None:
        from .dask import open_cluster

        return open_cluster(cluster, timeout=timeout, connect_timeout=startup_timeout,
                            name=_shown(spec))
    from jupyter_client import KernelClient, KernelManager

    from .channels import zeromq

    if is_local(spec) or is_url(spec):
        if is_local(spec):
            channel = zeromq.start_local(startup_timeout)
        else:
            from .channels import websocket

            channel = websocket.open_url(spec, kernel_name=kernel_name, timeout=startup_timeout,
                                         say=say or _say)
        target = _target(channel, timeout=timeout, name=_shown(spec),
                         startup_timeout=startup_timeout)
        if channel.owned:
            atexit.register(target.close)
        return channel.kernel, target
    if ssh is not None:
        from .channels import ssh as tunnelled

        path = connection_file(spec)
        kernel = os.path.basename(path)
        channel = tunnelled.connect(read_connection_file(path), ssh, startup_timeout, kernel)
        return channel.kernel, _target(channel, timeout=timeout, name=_shown(spec),
                                       startup_timeout=startup_timeout)
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
        raise TargetError(f"unknown target {spec!r}: expected 'local', 'local:NAME', a server "
                          f"URL, a connection file, a kernel id, a KernelManager, a "
                          f"KernelClient, a Dask Client or a scheduler address tcp://HOST:PORT")
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


def _options(spec):
    """``(spec, kernel_name, ssh)`` of a spec or a :class:`Remote`; options refused where they
    mean nothing, in one line."""
    spec, kernel_name, ssh = spec if isinstance(spec, Remote) else (spec, None, None)
    if kernel_name is not None and not (is_url(spec) and parse_url(spec)[1] is None):
        raise TargetError(f"kernel_name picks the kernel spec of a kernel started on a server: "
                          f"it needs a server URL, not {_shown(spec)!r}")
    if ssh is not None and (not isinstance(spec, str) or is_local(spec) or is_url(spec)):
        raise TargetError(f"ssh reaches a kernel on another host by its connection file: it "
                          f"needs a connection file or kernel id, not {_shown(spec)!r}")
    return spec, kernel_name, ssh


def _say(line):
    print(f"cloudpickle_ipy: {line}")


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
    """How listings and errors name ``spec``: a URL without its token."""
    if isinstance(spec, Remote):
        spec = spec.spec
    return shown_url(spec) if isinstance(spec, str) else type(spec).__name__


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

    def alias(self, name, spec, namespace=None, *, kernel_name=None, ssh=None):
        """Name ``spec`` (anything :meth:`get` takes) ``name`` from now on; a spec that names no
        kernel (a missing connection file, an unknown kernel id) is refused now, not at first use.
        ``kernel_name`` and ``ssh`` are :func:`connect`'s options, kept with the alias."""
        if not isinstance(name, str) or not name.isidentifier():
            raise TargetError(f"an alias must be an identifier, not {name!r}")
        if is_local(name):
            raise TargetError(f"{name!r} names the local kernel; choose another alias")
        if kernel_name is not None or ssh is not None:
            spec = Remote(spec, kernel_name, ssh)
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
            if not (is_local(spec) or opened.target.owned):
                raise TargetError(f"the kernel of {_shown(name)} ({opened.kernel}) is dead")
            self.say(f"the kernel of {_shown(name)} had died (what it held is gone); starting a "
                     f"new one")
        starts = is_local(obj) or is_url(_options(obj)[0])
        startup = self.startup_timeout if starts else self.connect_timeout
        kernel, target = _open(obj, namespace, self.timeout, startup, self.say)
        self._open[key] = _Open({_shown(name): None}, kernel, target)
        if not isinstance(obj, (str, Remote)):
            self._open[key].names[f"(object {id(obj):#x})"] = obj  # keeps the id valid
        return target

    def _key(self, spec, namespace):
        """``(key, what to open)``: one key per kernel (or Dask Client) whatever names it."""
        options = spec
        spec, kernel_name, ssh = _options(spec)
        cluster = dask_cluster(spec, namespace)
        if cluster is not None:
            return (cluster if isinstance(cluster, str) else id(cluster)), cluster
        from jupyter_client import KernelClient, KernelManager

        if is_local(spec):
            return spec, spec
        if is_url(spec):  # one kernel per server and spec (or per running kernel)
            base, kernel_id, _ = parse_url(spec)
            return ("url", base, kernel_id or f"new {kernel_name or ''}"), options
        if ssh is not None:
            return ("ssh", ssh, os.path.realpath(connection_file(spec))), options
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
            names += [a for a, spec in self.aliases.items()
                      if _shown(spec) in names and a not in names]
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
