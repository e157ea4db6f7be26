"""Which of the files a consumer follows may have changed since it last asked, without a ``stat``
per file per ask: what keeps the check before a cell, and the collection of module sources before
a request, flat in the number of modules.

On Linux the kernel tells, through inotify (the ``inotify_simple`` package): one watch per folder
holding a followed file, shared by every consumer in the process, read without blocking at each ask.
The kernel queues an event before the write that caused it returns, so an edit made before an ask
is reported by that ask. Where inotify is missing (another system, the package not installed, no
watch left, or the folder is gone), every followed file of the folders without a watch is reported
at every ask, so that the consumer stats it: slower, never wrong. Changes made through a path that
the kernel does not see (a network file system written by another machine) are not reported.
"""
import collections
import errno
import os
import threading
import weakref

try:
    import inotify_simple
except ImportError:  # not Linux, or not installed: every file is reported at every ask
    inotify_simple = None

if inotify_simple is not None:
    _flags = inotify_simple.flags
    _LISTING = _flags.CREATE | _flags.DELETE | _flags.MOVED_FROM | _flags.MOVED_TO
    _MASK = _LISTING | _flags.MODIFY | _flags.ATTRIB | _flags.CLOSE_WRITE | _flags.DELETE_SELF \
        | _flags.MOVE_SELF | _flags.ONLYDIR
    _GONE = _flags.IGNORED | _flags.DELETE_SELF | _flags.MOVE_SELF | _flags.UNMOUNT
    _OVERFLOW = _flags.Q_OVERFLOW

LISTING = ""  # the name under which a consumer follows a folder's listing rather than a file


class FileChanges:
    """One consumer's view: the files (and folder listings) it follows, and those that may have
    changed since its last :meth:`take`."""

    def __init__(self):
        self._index = {}  # real folder -> {file name, or LISTING: {paths as the consumer gave them}}
        self._where = {}  # (path as given, listing or not) -> (real folder, name) it was followed at
        self._changed = set()
        self._hub = _hub()
        self._hub.join(self)

    def follow(self, path):
        """Report ``path`` (a file: its content, or its replacement) when it may have changed."""
        self._add((path, False), self._hub.locate(path))

    def follow_listing(self, folder):
        """Report ``folder`` when an entry is created, deleted or renamed in it."""
        self._add((folder, True), (self._hub.real_folder(folder), LISTING))

    def forget(self, path):
        """Stop following the file ``path``."""
        self._remove((path, False))

    def forget_listing(self, folder):
        """Stop following the listing of ``folder``."""
        self._remove((folder, True))

    def take(self):
        """(paths the system reported changed, paths it cannot watch) since the last call, as two
        new sets: the first did change (or were touched), the second may have; compare their
        ``stat`` with what was seen before."""
        with self._hub.lock:  # another consumer's take may pass events on to this one meanwhile
            self._hub.poll()
            changed, self._changed = self._changed, set()
            unwatched = set()
            if self._hub.unwatched:
                for folder in self._hub.unwatched.intersection(self._index):
                    unwatched.update(*self._index[folder].values())
        return changed, unwatched

    def _add(self, key, where):
        if key in self._where:
            return
        self._where[key] = where
        folder, name = where
        names = self._index.get(folder)
        if names is None:
            names = self._index[folder] = {}
            self._hub.hold(folder)
        names.setdefault(name, set()).add(key[0])

    def _remove(self, key):
        where = self._where.pop(key, None)
        if where is None:
            return
        folder, name = where
        names = self._index[folder]
        names[name].discard(key[0])
        if not names[name]:
            del names[name]
        if not names:
            del self._index[folder]
            self._hub.release(folder)

    def _notice(self, folder, name, mask):
        names = self._index.get(folder)
        if names is None:
            return
        if mask is None:  # the folder's watch is gone, or events were lost: everything may have
            self._changed.update(*names.values())
            return
        if name in names:
            self._changed.update(names[name])
        if mask & _LISTING and LISTING in names:
            self._changed.update(names[LISTING])


class _Hub:
    """The process's inotify instance and its folder watches, shared by every :class:`FileChanges`."""

    def __init__(self):
        self.lock = threading.RLock()
        self.consumers = weakref.WeakSet()
        self.holders = collections.Counter()  # real folder -> consumers following something in it
        self.watches = {}  # watch descriptor -> real folder
        self.descriptors = {}  # real folder -> watch descriptor
        self.unwatched = set()  # followed folders without a watch: their files are always reported
        self.lost = set()  # of those, the ones whose watch went away (deleted, moved): retried
        self.real_folders = {}
        self.inotify = None
        if inotify_simple is not None:
            try:
                self.inotify = inotify_simple.INotify()
            except (OSError, AttributeError):  # no instance left for this user; no inotify in libc
                pass

    def join(self, consumer):
        with self.lock:
            self.consumers.add(consumer)
        weakref.finalize(consumer, self._drop, consumer._index)

    def real_folder(self, folder):
        real = self.real_folders.get(folder)
        if real is None:
            real = self.real_folders[folder] = os.path.realpath(folder)
        return real

    def locate(self, path):
        """(real folder, name) of a file: where its events come from (a symlink: its target's)."""
        if os.path.islink(path):
            path = os.path.realpath(path)
        folder, name = os.path.split(path)
        return self.real_folder(folder), name

    def hold(self, folder):
        with self.lock:
            self.holders[folder] += 1
            if self.holders[folder] == 1:
                self._watch(folder)

    def release(self, folder):
        with self.lock:
            self.holders[folder] -= 1
            if self.holders[folder] > 0:
                return
            del self.holders[folder]
            self.unwatched.discard(folder)
            self.lost.discard(folder)
            descriptor = self.descriptors.pop(folder, None)
            if descriptor is not None:
                self.watches.pop(descriptor, None)
                try:
                    self.inotify.rm_watch(descriptor)
                except OSError:  # already gone with its folder
                    pass

    def _drop(self, index):
        for folder in index:
            self.release(folder)

    def _watch(self, folder):
        if self.inotify is None:
            self.unwatched.add(folder)
            return False
        try:
            descriptor = self.inotify.add_watch(folder, _MASK)
        except OSError as exc:
            self.unwatched.add(folder)
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                self.lost.add(folder)  # may come back (a checkout): retried at every poll
            return False
        self.watches[descriptor] = folder
        self.descriptors[folder] = descriptor
        self.unwatched.discard(folder)
        return True

    def poll(self):
        """Read the events queued so far (never waits) and pass them on to the consumers."""
        with self.lock:
            if self.inotify is None:
                return
            for folder in list(self.lost):
                if self._watch(folder):  # back: it may have changed while it was gone
                    self.lost.discard(folder)
                    self._tell(folder, LISTING, None)
            for event in self.inotify.read(timeout=0):
                if event.mask & _OVERFLOW:  # events were lost: everything may have changed
                    for folder in self.descriptors:
                        self._tell(folder, LISTING, None)
                    continue
                folder = self.watches.get(event.wd)
                if folder is None:
                    continue
                if event.mask & _GONE and not event.name:  # deleted, moved away, unmounted
                    self._tell(folder, LISTING, None)
                    self._lose(event.wd, folder)
                    continue
                self._tell(folder, event.name, event.mask)

    def _lose(self, descriptor, folder):
        """The folder's watch is gone, or follows it elsewhere (moved): drop it, and watch the path
        again once something is there (a checkout puts it back)."""
        del self.watches[descriptor]
        del self.descriptors[folder]
        try:
            self.inotify.rm_watch(descriptor)
        except OSError:  # already removed by the kernel
            pass
        self.unwatched.add(folder)
        self.lost.add(folder)

    def _tell(self, folder, name, mask):
        for consumer in list(self.consumers):
            consumer._notice(folder, name, mask)


_the_hub = []
_creating = threading.Lock()


def _hub():
    with _creating:
        if not _the_hub:
            _the_hub.append(_Hub())
        return _the_hub[0]
