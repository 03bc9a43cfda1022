"""Artifact stores: the contract (``base``), the local folder (``local``), any fsspec URL
(``fsspec_store``) and :func:`open_store` (``registry``)."""

from __future__ import annotations

from regrow.catalog.stores.base import ArtifactStore, StoredFile, check_key
from regrow.catalog.stores.fsspec_store import FsspecStore
from regrow.catalog.stores.local import LocalStore
from regrow.catalog.stores.registry import open_store, register_store

__all__ = [
    "ArtifactStore",
    "FsspecStore",
    "LocalStore",
    "StoredFile",
    "check_key",
    "open_store",
    "register_store",
]
