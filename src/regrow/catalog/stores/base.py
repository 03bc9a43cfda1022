"""The artifact store contract: content-addressed, atomic, verified on every read.

An artifact's key is the lowercase hex sha256 of its bytes, stored as ``<root>/<key[:2]>/<key>``.
Writes go to a temporary file under ``<root>/tmp/`` that is then moved into place, so a crash
mid-write never leaves a partial file under a real key; reads re-hash the bytes and raise
:class:`~regrow.errors.ArtifactCorrupted` when they do not match the key. A write of a key that
is already stored hashes the stored bytes (the key says what they must hash to) and replaces
them when they do not match; every write is read back and hashed after the rename (unless the
store was built with ``verify_writes=False``). For checks of the whole store, :meth:`sizes` answers
for many keys in one batched metadata call, :meth:`digest` hashes what is stored, and
:meth:`list_files` walks every file. Implementations provide a few storage primitives;
:class:`ArtifactStore` builds the contract on top of them.

>>> check_key("ab" * 32) == "ab" * 32
True
>>> check_key("../etc/passwd")
Traceback (most recent call last):
...
regrow.errors.InvalidKey: invalid artifact key '../etc/passwd': ...
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from regrow._hashing import sha256_hex
from regrow.errors import ArtifactCorrupted, ArtifactNotFound, InvalidKey, StoreError

__all__ = ["CHUNK_SIZE", "ArtifactStore", "StoredFile", "check_key"]

CHUNK_SIZE = 1 << 20
"""Bytes read or written at a time when streaming files."""

_KEY = re.compile(r"[0-9a-f]{64}")
_TEMP = re.compile(r"tmp/[0-9a-f]{32}\.part")


@dataclass(frozen=True)
class StoredFile:
    """A file found under a store's root by :meth:`ArtifactStore.list_files`.

    ``path`` is relative to the root (``ab/abcd...`` for an artifact, ``tmp/<id>.part`` for a
    temporary file a crashed write left); ``key`` is the artifact's key, None for a temporary
    file; ``modified`` is when it was last written, when the store can tell.
    """

    path: str
    key: str | None
    size: int
    modified: datetime | None


def check_key(key: Any) -> str:
    """Return ``key`` if it is a sha256 hex digest, else raise :class:`~regrow.errors.InvalidKey`.

    Only such keys are accepted, so a key can never name a path outside the store.
    """
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidKey(
            f"invalid artifact key {key!r}: a key is the 64 lowercase hex characters of the "
            "sha256 of the artifact's bytes",
            hint="use the key that put() or put_file() returned",
        )
    return key


class ArtifactStore(ABC):
    """A content-addressed store of immutable artifacts (see the module docs).

    Subclasses implement the storage primitives (the ``_``-prefixed abstract methods) and set
    ``url``, a string :func:`~regrow.catalog.store.open_store` can open again (for example in
    a worker process).
    """

    url: str
    verify_writes: bool = True
    """Read every write back and hash it after the rename (a subclass may turn it off)."""

    # -- the contract -------------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its key.

        Storing bytes that are already there is a no-op; when the file under the key holds
        other bytes (it was altered or truncated) it is replaced, atomically.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise StoreError(
                f"put() stores bytes (got a {type(data).__name__})",
                hint="serialize the object to bytes first, or store a file with put_file()",
            )
        key = sha256_hex(data)
        if self._intact(key):
            return key
        return self._write([data], f"{len(data)} bytes", key=key)

    def put_file(self, path: str | os.PathLike[str]) -> str:
        """Store the file at ``path`` (streamed: it is never read whole) and return its key."""
        with open(path, "rb") as source:
            chunks = iter(lambda: source.read(CHUNK_SIZE), b"")
            return self._write(chunks, repr(os.fspath(path)))

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``, verified against it.

        Raises :class:`~regrow.errors.ArtifactNotFound` or
        :class:`~regrow.errors.ArtifactCorrupted`.
        """
        check_key(key)
        try:
            with self._open(key) as handle:
                data: bytes = handle.read()
        except FileNotFoundError:
            raise self._not_found(key) from None
        self._verify(key, sha256_hex(data))
        return data

    def open_local(self, key: str) -> AbstractContextManager[Path]:
        """A context manager giving a verified local file with the artifact's bytes.

        For a local store this is the stored file itself (do not modify it); otherwise the
        artifact is downloaded to a temporary file that is removed on exit. The key is checked
        at once; existence and integrity when the context is entered.
        """
        return self._open_local(check_key(key))

    def exists(self, key: str) -> bool:
        """Whether an artifact is stored under ``key``."""
        return self._exists(check_key(key))

    def size(self, key: str) -> int:
        """The size in bytes of the artifact under ``key``."""
        check_key(key)
        try:
            return self._size(key)
        except FileNotFoundError:
            raise self._not_found(key) from None

    def sizes(self, keys: Iterable[str]) -> dict[str, int | None]:
        """The size of the artifact under each key, None for a missing one.

        One batched metadata call where the store has one (a folder listing per key prefix
        on fsspec stores, however many keys share it), so checking that every artifact of a
        run is still there costs about as much as checking one.
        """
        wanted = list(dict.fromkeys(check_key(k) for k in keys))
        return self._sizes(wanted) if wanted else {}

    def exists_many(self, keys: Iterable[str]) -> dict[str, bool]:
        """Whether an artifact is stored under each key (see :meth:`sizes`)."""
        return {k: size is not None for k, size in self.sizes(keys).items()}

    def digest(self, key: str) -> str:
        """The sha256 of the bytes stored under ``key`` (read whole, streamed).

        Equal to ``key`` for an intact artifact; anything else means the file was altered.
        Raises :class:`~regrow.errors.ArtifactNotFound` when nothing is stored under it.
        """
        check_key(key)
        try:
            return self._hash_stored(key)
        except FileNotFoundError:
            raise self._not_found(key) from None

    def list_files(self) -> Iterator[StoredFile]:
        """Every artifact and leftover temporary file under the store's root.

        Files that are neither (another program's) are not listed, so never deleted.
        """
        for path, size, modified in self._list():
            folder, _, name = path.rpartition("/")
            if _KEY.fullmatch(name) and folder == name[:2]:
                yield StoredFile(path, name, size, modified)
            elif _TEMP.fullmatch(path):
                yield StoredFile(path, None, size, modified)

    def remove_temp(self, path: str) -> None:
        """Remove a leftover temporary file (a ``tmp/...`` path from :meth:`list_files`)."""
        if not isinstance(path, str) or not _TEMP.fullmatch(path):
            raise InvalidKey(
                f"invalid temporary file {path!r}: temporary files are tmp/<32 hex>.part",
                hint="pass the path of a StoredFile whose key is None",
            )
        self._discard(self._temp_name(path))

    def delete(self, key: str) -> None:
        """Remove the artifact under ``key``; a missing artifact is not an error.

        Artifacts are immutable and shared by everything that stored the same bytes: delete
        only what this process has just written, when a later step failed.
        """
        self._remove(check_key(key))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- storage primitives ---------------------------------------------------------------------

    @abstractmethod
    def _open_temp(self) -> tuple[str, IO[bytes]]:
        """Create a new temporary file; return its name and a handle open for writing."""

    @abstractmethod
    def _commit(self, temp: str, key: str) -> None:
        """Move the closed temporary file ``temp`` to ``key``'s path, atomically."""

    @abstractmethod
    def _discard(self, temp: str) -> None:
        """Remove the temporary file ``temp`` if it exists."""

    @abstractmethod
    def _open(self, key: str) -> IO[bytes]:
        """Open the artifact for reading; raise FileNotFoundError if it does not exist."""

    @abstractmethod
    def _exists(self, key: str) -> bool:
        """Whether the artifact exists."""

    @abstractmethod
    def _size(self, key: str) -> int:
        """The artifact's size; raise FileNotFoundError if it does not exist."""

    @abstractmethod
    def _remove(self, key: str) -> None:
        """Remove the artifact if it exists."""

    def _local_path(self, key: str) -> Path | None:
        """The artifact's path on the local file system, if it has one."""
        return None

    @abstractmethod
    def _sync(self, handle: IO[bytes]) -> None:
        """Make the flushed bytes durable before the temporary file is moved into place."""

    @abstractmethod
    def _list(self) -> Iterable[tuple[str, int, datetime | None]]:
        """Every file under the root: its path relative to the root, size and modified time."""

    @abstractmethod
    def _temp_name(self, path: str) -> str:
        """The name :meth:`_discard` takes for the temporary file at ``path`` (relative)."""

    def _sizes(self, keys: list[str]) -> dict[str, int | None]:
        """The size of each artifact, None for a missing one (override to batch the calls)."""
        found: dict[str, int | None] = {}
        for key in keys:
            try:
                found[key] = self._size(key)
            except FileNotFoundError:
                found[key] = None
        return found

    # -- helpers --------------------------------------------------------------------------------

    @contextmanager
    def _open_local(self, key: str) -> Iterator[Path]:
        local = self._local_path(key)
        if local is not None:
            try:
                with open(local, "rb") as handle:
                    self._verify(key, _hash_stream(handle))
            except FileNotFoundError:
                raise self._not_found(key) from None
            yield local
            return
        with tempfile.TemporaryDirectory(prefix="regrow-artifact-") as folder:
            target = Path(folder) / key
            try:
                with self._open(key) as source, open(target, "wb") as sink:
                    digest = hashlib.sha256()
                    for chunk in iter(lambda: source.read(CHUNK_SIZE), b""):
                        digest.update(chunk)
                        sink.write(chunk)
            except FileNotFoundError:
                raise self._not_found(key) from None
            self._verify(key, digest.hexdigest())
            yield target

    def _write(self, chunks: Iterable[bytes], what: str, key: str | None = None) -> str:
        """Write ``chunks`` to a temporary file, then move it under its key (hashed on the way
        unless the caller already knows it)."""
        temp, handle = self._open_temp()
        try:
            digest, size = hashlib.sha256(), 0
            with handle:
                for chunk in chunks:
                    if key is None:
                        digest.update(chunk)
                    handle.write(chunk)
                    size += len(chunk)
                handle.flush()
                self._sync(handle)
            key = key or digest.hexdigest()
            if self._intact(key):
                self._discard(temp)
            else:
                self._commit(temp, key)
                self._check_written(key, what)
        except BaseException as exc:
            with suppress(OSError):
                self._discard(temp)
            if isinstance(exc, OSError):
                raise StoreError(
                    f"could not store {what} in {self.url!r}: {exc}",
                    hint="check that the store is reachable and writable and has free space",
                ) from exc
            raise
        return key

    def _intact(self, key: str) -> bool:
        """Whether ``key`` holds bytes that hash to it. The key is the content's hash, so
        hashing the stored file is the whole check: an altered file (even of the same size)
        is replaced by the next write rather than kept."""
        try:
            return self._hash_stored(key) == key
        except FileNotFoundError:
            return False

    def _hash_stored(self, key: str) -> str:
        with self._open(key) as handle:
            return _hash_stream(handle)

    def _check_written(self, key: str, what: str) -> None:
        """Read the file just moved under ``key`` back and hash it; remove it if it differs."""
        if not self.verify_writes:
            return
        found = self._hash_stored(key)
        if found != key:
            with suppress(OSError):
                self._remove(key)
            raise StoreError(
                f"could not store {what} in {self.url!r}: the file moved under {key} reads "
                f"back as {found}",
                hint="the store altered the bytes on the way; check its disk or service, "
                "then write again",
            )

    def _verify(self, key: str, found: str) -> None:
        if found != key:
            raise ArtifactCorrupted(
                f"artifact {key} in {self.url!r} is corrupted: its bytes hash to {found}",
                hint="it was altered or truncated after it was written; `regrow doctor "
                "--repair` rebuilds the component versions that use it, else restore it from "
                "a backup",
            )

    def _not_found(self, key: str) -> ArtifactNotFound:
        return ArtifactNotFound(
            f"no artifact {key} in {self.url!r}",
            hint="check the key and the store URL, or re-run the step that produced it",
        )


def _hash_stream(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
        digest.update(chunk)
    return digest.hexdigest()
