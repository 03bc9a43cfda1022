"""The content-addressed artifact store (fitted components, snapshots, reports).

Keys are the sha256 of the bytes; writes are atomic; every read is verified. The
implementations live in :mod:`regrow.catalog.stores`; this module is the import path to use.

>>> store = open_store("memory://regrow-store-doctest")
>>> key = store.put(b"model bytes")
>>> key
'9cb7487000bc86ac36ce83c4acfabe8878552be99572a6770f65ab1d048a5c48'
>>> store.get(key)
b'model bytes'
"""

from __future__ import annotations

from regrow.catalog.stores import (
    ArtifactStore,
    FsspecStore,
    LocalStore,
    StoredFile,
    check_key,
    open_store,
    register_store,
)

__all__ = [
    "ArtifactStore",
    "FsspecStore",
    "LocalStore",
    "StoredFile",
    "check_key",
    "open_store",
    "register_store",
]
