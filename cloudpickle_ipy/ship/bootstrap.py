"""Sending the agent and the core to a kernel that lacks them, or has another version of them.

The target needs only ipykernel. Before starting the agent, the client asks the kernel (a silent
execution whose user expression runs :data:`PROBE`) for its Python version and for the
``__version__`` and a fingerprint of the ``cloudpickle_ipy`` it can import: a SHA-256 over the
source of every module the agent runs (:func:`sources`). Unless both match this side's, the client
sends those sources as text inside one execute request (:func:`install_code`: code, not a payload;
payloads still travel only as signed binary buffers), which installs them as in-memory modules
under their own names, ahead of anything installed: payloads name rebuild functions such as
``cloudpickle_ipy.core.functions._rebuild_function``, which must resolve to the client's code.
The shipped package ``cloudpickle_ipy`` is a stub holding ``__version__``; its modules'
``__file__`` start with ``<shipped cloudpickle_ipy VERSION>`` and their tracebacks show their
source.
"""
import importlib.util
import os

from .. import __version__, core

# Everything the agent, or a Dask worker or scheduler (.dask_worker), imports from this package,
# beyond the core's modules.
AGENT_MODULES = ("cloudpickle_ipy.ship", "cloudpickle_ipy.ship.agent", "cloudpickle_ipy.ship.parts",
                 "cloudpickle_ipy.ship.envelope", "cloudpickle_ipy.ship.keys",
                 "cloudpickle_ipy.ship.modules", "cloudpickle_ipy.ship.dask_worker")
ORIGIN = f"<shipped cloudpickle_ipy {__version__}>"
_STUB = (f'"""cloudpickle_ipy\'s core and agent as shipped by a client: not installed here."""\n'
         f'__version__ = {__version__!r}\n')

# Runs on the target (any Python 3) and here: ``probe`` returns a dict of plain data.
PROBE = '''
def fingerprint(names, get_source):
    import hashlib
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\\0" + get_source(name).encode("utf-8") + b"\\0")
    return digest.hexdigest()


def probe(version, names):
    import importlib.util, sys
    found = {"python": "%d.%d" % sys.version_info[:2], "version": None, "fingerprint": None}
    try:
        import cloudpickle_ipy
        found["version"] = getattr(cloudpickle_ipy, "__version__", None)
        if found["version"] == version:
            found["fingerprint"] = fingerprint(
                names, lambda name: importlib.util.find_spec(name).loader.get_source(name))
    except Exception as exc:  # missing, broken, or without one of the modules: ship ours
        found["error"] = "%s: %s" % (type(exc).__name__, exc)
    return found
'''
_probe = {}
exec(PROBE, _probe)

# Runs on the target, with SOURCES ({name: (is_package, source)}) and ORIGIN as globals.
INSTALL = '''
import sys, types
helper = types.ModuleType("cloudpickle_ipy.ship.modules")
exec(compile(SOURCES["cloudpickle_ipy.ship.modules"][1], ORIGIN + "/cloudpickle_ipy/ship/modules.py",
             "exec"), vars(helper))
finder = helper.ShippedModules()
for name in [n for n in sys.modules if n == "cloudpickle_ipy" or n.startswith("cloudpickle_ipy.")]:
    del sys.modules[name]
finder.update({name: (ORIGIN + "/" + name.replace(".", "/") + ("/__init__.py" if package else ".py"),
                      package, source.encode("utf-8"))
               for name, (package, source) in SOURCES.items()})
finder.install()
'''


def _module_names():
    """The core package and its modules, then the agent's: every module a shipped agent runs."""
    folder = os.path.dirname(core.__file__)
    names = sorted(f"cloudpickle_ipy.core.{file[:-3]}" for file in os.listdir(folder)
                   if file.endswith(".py") and file != "__init__.py")
    return ["cloudpickle_ipy.core", *names, *AGENT_MODULES]


_cache = {}


def sources():
    """``{module name: (is_package, source)}`` of what is shipped (read once), the package stub
    ``cloudpickle_ipy`` included, and their fingerprint."""
    if not _cache:
        names = _module_names()
        found = {name: (name in ("cloudpickle_ipy.core", "cloudpickle_ipy.ship"),
                        importlib.util.find_spec(name).loader.get_source(name)) for name in names}
        _cache["sources"] = {"cloudpickle_ipy": (True, _STUB), **found}
        _cache["fingerprint"] = _probe["fingerprint"](names, lambda name: found[name][1])
    return _cache["sources"], _cache["fingerprint"]


def probe_expression():
    """A Python expression the target evaluates (as a user expression) into :data:`PROBE`'s
    report, leaving nothing behind in its namespace."""
    names = [name for name in sources()[0] if name != "cloudpickle_ipy"]
    return (f"(lambda ns: (exec({PROBE!r}, ns), ns['probe']({__version__!r}, {names!r}))[1])"
            f"({{}})")


def needs_shipping(report):
    """Whether the target described by ``report`` (from :data:`PROBE`) must get our code."""
    return report["version"] != __version__ or report["fingerprint"] != sources()[1]


def install_code():
    """The code of the execute request that installs the shipped modules on the target."""
    return f"exec({INSTALL!r}, {{'SOURCES': {sources()[0]!r}, 'ORIGIN': {ORIGIN!r}}})"
