"""The extension's state in one shell: its configuration, the watcher, why each module is pickled by
value, and every hook it added, so that unloading removes exactly those.

Nothing here may break a user's cell: a failure of the extension's own hooks is reported once and
the cell runs on.
"""
import sys
import traceback

from traitlets import Bool, Float, List, Unicode
from traitlets.config import Configurable

from . import core
from .display import attach
from .magics import PickleByValueMagics, ShipMagics
from .ship.progress import AFTER as PROGRESS_AFTER
from .ship.targets import Targets
from .watcher import Watcher


class CloudpickleIPy(Configurable):
    """Pickle the modules you are editing by value: settings of the cloudpickle_ipy extension."""

    watch = Bool(True, help="Before every cell (and before the extension pickles anything), "
                 "register by value the modules being edited.").tag(config=True)
    watched_folders = List(Unicode(), default_value=["."], help=(
        "Folders whose modules count as yours (relative ones against the current working "
        "directory, at each check).")).tag(config=True)
    watch_editable_installs = Bool(True, help=(
        "Also count as yours the source folders of packages installed with `pip install -e`."
    )).tag(config=True)
    exclude = List(Unicode(), default_value=[], help=(
        "Module-name patterns (fnmatch, e.g. 'mylib.vendored*') never to register by value."
    )).tag(config=True)
    progress = Bool(True, help=(
        "Show the progress of long transfers to and from targets (bytes done of total, and the "
        "rate): a bar updated in place in a notebook, one line in a terminal.")).tag(config=True)
    progress_after = Float(PROGRESS_AFTER, min=0.0, help=(
        "Seconds a transfer must last, or be estimated to last, before its progress shows."
    )).tag(config=True)

    def __init__(self, shell, **kwargs):
        super().__init__(parent=shell, **kwargs)
        self.shell = shell
        self.reasons = {}  # module name -> why it is pickled by value
        self.refused = set()  # unregistered with %pickle_by_value -r: the watcher leaves them be
        self.watcher = Watcher(self)
        self.targets = Targets(say=self.say)  # the session's targets: local kernels live until unload
        self._failed = False

    # --- what the watcher and the magics call ---------------------------------------------------

    def register(self, name, reason):
        """Pickle module ``name`` (imported) by value, remembering why."""
        core.register_pickle_by_value(sys.modules[name])
        self.reasons[name] = reason

    def unregister(self, name):
        core.unregister_pickle_by_value(sys.modules[name])
        self.reasons.pop(name, None)

    def show_output_of(self, target):
        """Show what ``target`` outputs (displays, streams) in this shell as it would show there,
        and the progress of its long transfers (as the settings say)."""
        attach(self.shell, target, self.progress_after if self.progress else None)

    def say(self, line):
        """One short line in the cell's output."""
        print(f"cloudpickle_ipy: {line}")

    def before_pickling(self):
        """Bring the by-value registry up to date; runs before every cell and every shipment."""
        if not self.watch:
            return
        try:
            self.watcher.check()
        except Exception:  # never break the user's cell; say it once
            if not self._failed:
                self._failed = True
                print("cloudpickle_ipy: the module watcher failed and is off for this session:\n"
                      + traceback.format_exc(limit=3), file=sys.stderr)
            self.watch = False

    def pre_run_cell(self, info=None):  # IPython >= 8.17 passes ``info``; earlier ones nothing
        self.before_pickling()

    # --- loading and unloading ------------------------------------------------------------------

    def install(self):
        shell = self.shell
        shell.configurables.append(self)
        self.all_magics = [PickleByValueMagics(shell, self), ShipMagics(shell, self)]
        for magics in self.all_magics:
            shell.register_magics(magics)
        shell.events.register("pre_run_cell", self.pre_run_cell)
        shell.set_hook("complete_command", _complete_module_names, str_key="%pickle_by_value")
        for command in _TARGET_COMMANDS:
            shell.set_hook("complete_command", self._complete_targets, str_key=command)

    def uninstall(self):
        shell = self.shell
        shell.events.unregister("pre_run_cell", self.pre_run_cell)
        for magics in self.all_magics:
            for kind in ("line", "cell"):
                for name in magics.magics[kind]:
                    shell.magics_manager.magics[kind].pop(name, None)
            shell.magics_manager.registry.pop(type(magics).__name__, None)
        completers = shell.strdispatchers.get("complete_command")
        if completers is not None:
            for command in ("%pickle_by_value", *_TARGET_COMMANDS):
                completers.strs.pop(command, None)
        for configurable in (*self.all_magics, self):  # Magics() appended itself on creation
            if configurable in shell.configurables:
                shell.configurables.remove(configurable)
        self.targets.close()

    def _complete_targets(self, shell, event):
        """Tab completion of the target argument: aliases, local, and kernel variables."""
        from jupyter_client import KernelClient, KernelManager

        if len(event.line.split()) > 2 or (len(event.line.split()) == 2 and event.symbol == ""):
            return []
        names = {"local", *self.targets.aliases}
        names.update(n for n, v in shell.user_ns.items()
                     if isinstance(v, (KernelManager, KernelClient)))
        return sorted(n for n in names if n.startswith(event.symbol))


_TARGET_COMMANDS = ("%%cloudpickle_ship", "%cloudpickle_push", "%cloudpickle_pull")


def _complete_module_names(shell, event):
    """Tab completion for %pickle_by_value: imported modules, then top-level importable ones."""
    import pkgutil

    prefix = event.symbol
    names = {name for name in sys.modules if name.startswith(prefix)}
    if "." not in prefix:
        names.update(m.name for m in pkgutil.iter_modules() if m.name.startswith(prefix))
    return sorted(names)


_states = {}  # id(shell) -> its CloudpickleIPy
_reasons = {}  # id(shell) -> why its modules were registered, kept across %reload_ext


def load(shell):
    if id(shell) in _states:
        return
    state = _states[id(shell)] = CloudpickleIPy(shell)
    registered = core.list_registry_pickle_by_value()
    state.reasons.update((name, why) for name, why in _reasons.pop(id(shell), {}).items()
                         if name in registered)
    state.install()


def unload(shell):
    state = _states.pop(id(shell), None)
    if state is not None:
        state.uninstall()
        _reasons[id(shell)] = state.reasons


def state_of(shell):
    """The extension's state in ``shell``, or None if it is not loaded there."""
    return _states.get(id(shell))
