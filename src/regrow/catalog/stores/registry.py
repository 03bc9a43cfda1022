"""Open an artifact store from a URL.

Plain paths, ``file://`` and ``local://`` URLs give a :class:`LocalStore`; other protocols
use the factory registered for them with :func:`register_store`, else :class:`FsspecStore`.

>>> import tempfile
>>> type(open_store(tempfile.mkdtemp())).__name__
'LocalStore'
>>> type(open_store("memory://regrow-registry-doctest")).__name__
'FsspecStore'
"""

from __future__ import annotations

import os
from collections.abc import Callable

from regrow.catalog.stores.base import ArtifactStore
from regrow.catalog.stores.fsspec_store import FsspecStore
from regrow.catalog.stores.local import LocalStore
from regrow.errors import ConfigError

__all__ = ["open_store", "register_store"]

StoreFactory = Callable[[str], ArtifactStore]

_FACTORIES: dict[str, StoreFactory] = {}
_LOCAL_PROTOCOLS = ("file", "local")


def register_store(protocol: str, factory: StoreFactory) -> None:
    """Make :func:`open_store` build ``protocol://...`` stores with ``factory(url)``."""
    _FACTORIES[protocol.lower()] = factory


def open_store(url: str | os.PathLike[str]) -> ArtifactStore:
    """The artifact store at ``url``: a folder path or any fsspec URL (``s3://bucket/x``)."""
    text = os.fspath(url)
    if not isinstance(text, str) or not text:
        raise ConfigError(
            f"an artifact store URL must be a non-empty string (got {url!r})",
            hint="pass a folder path or an fsspec URL such as s3://bucket/prefix",
        )
    if "://" not in text:
        return LocalStore(text)
    protocol, rest = text.split("://", 1)
    protocol = protocol.lower()
    if protocol in _LOCAL_PROTOCOLS:
        return LocalStore(rest)
    factory = _FACTORIES.get(protocol)
    return factory(text) if factory is not None else FsspecStore(text)
