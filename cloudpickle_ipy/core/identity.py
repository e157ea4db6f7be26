"""One object per id in a process, for what travels by value but must keep its identity: classes
and type variables.

An id is ``<fingerprint>-<ordinal>``: the fingerprint digests what defines the object, the ordinal
tells apart objects with the same definition (a class made by a factory, a notebook cell run
twice). Neither is random, so the same program pickles the same object to the same bytes in every
run, while two processes share an id only for the same definition. A process that loads an id it
already knows (a second payload, or its own class coming back) gets the object it has.
"""
import hashlib
import threading
import weakref

lock = threading.RLock()
_id_of = weakref.WeakKeyDictionary()
_object_of = weakref.WeakValueDictionary()
_next_ordinal = {}  # fingerprint -> next free ordinal


def tracking_id(obj, fingerprint):
    """This process's id for ``obj``; ``fingerprint(obj)`` digests its definition (first call only)."""
    try:
        return _id_of[obj]
    except KeyError:
        pass
    with lock:
        if obj in _id_of:
            return _id_of[obj]
        digest = fingerprint(obj)
        ordinal = _next_ordinal.get(digest, 0)
        while f"{digest}-{ordinal}" in _object_of:
            ordinal += 1
        track(obj, f"{digest}-{ordinal}")
        return _id_of[obj]


def track(obj, oid):
    """Make ``obj`` the object of ``oid`` here, and keep later ids of its definition distinct."""
    _id_of[obj] = oid
    _object_of[oid] = obj
    digest, _, ordinal = oid.rpartition("-")
    if ordinal.isdigit():
        _next_ordinal[digest] = max(_next_ordinal.get(digest, 0), int(ordinal) + 1)


def tracked(oid):
    """The object this process has for ``oid``, or None."""
    return _object_of.get(oid)


def digest(*parts):
    """A short hex digest of strings and bytes."""
    h = hashlib.blake2b(digest_size=10)
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode(errors="surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()
