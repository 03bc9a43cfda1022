"""An artifact store on any fsspec file system: ``s3://bucket/prefix``, ``gs://``, ``memory://``.

>>> store = FsspecStore("memory://regrow-doctest")
>>> key = store.put(b"report")
>>> store.get(key)
b'report'
>>> store.delete(key)
>>> store.exists(key)
False
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import fsspec

from regrow.catalog.stores.base import ArtifactStore
from regrow.errors import ConfigError

__all__ = ["FsspecStore"]


class FsspecStore(ArtifactStore):
    """Artifacts under the fsspec URL ``url``; ``storage_options`` go to the file system.

    Writes go to ``<root>/tmp/`` and are moved into place with ``fs.mv``: a rename on local
    and most POSIX-like file systems; on object stores a server-side copy of an object that
    was uploaded whole, so no reader ever sees a partial object under its key either way.
    Each write is then read back and hashed; ``verify_writes=False`` skips that (on an
    object store it downloads what was just uploaded).
    """

    def __init__(self, url: str, *, verify_writes: bool = True, **storage_options: Any) -> None:
        self.url = url
        self.verify_writes = verify_writes
        self.storage_options = storage_options
        try:
            fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except ImportError as exc:
            protocol = url.split("://", 1)[0]
            raise ConfigError(
                f"cannot open the artifact store {url!r}: {exc}",
                hint=f"install the fsspec implementation for {protocol!r} "
                "(for example `pip install s3fs` for s3://, `pip install gcsfs` for gs://)",
            ) from exc
        except ValueError as exc:
            raise ConfigError(
                f"cannot open the artifact store {url!r}: {exc}",
                hint="use a folder path or an fsspec URL such as s3://bucket/prefix",
            ) from exc
        self._fs = fs
        self._root = str(root).rstrip("/")

    @property
    def fs(self) -> Any:
        """The fsspec file system."""
        return self._fs

    def _path(self, key: str) -> str:
        return f"{self._root}/{key[:2]}/{key}"

    def _open_temp(self) -> tuple[str, IO[bytes]]:
        self._fs.makedirs(f"{self._root}/tmp", exist_ok=True)
        temp = f"{self._root}/tmp/{uuid.uuid4().hex}.part"
        handle: IO[bytes] = self._fs.open(temp, "wb")
        return temp, handle

    def _sync(self, handle: IO[bytes]) -> None:
        pass  # fsspec file systems have no portable fsync; closing the file commits it

    def _commit(self, temp: str, key: str) -> None:
        self._fs.makedirs(f"{self._root}/{key[:2]}", exist_ok=True)
        self._fs.mv(temp, self._path(key))

    def _discard(self, temp: str) -> None:
        with suppress(FileNotFoundError):
            self._fs.rm_file(temp)

    def _open(self, key: str) -> IO[bytes]:
        handle: IO[bytes] = self._fs.open(self._path(key), "rb")
        return handle

    def _exists(self, key: str) -> bool:
        return bool(self._fs.isfile(self._path(key)))

    def _size(self, key: str) -> int:
        return int(self._fs.size(self._path(key)))

    def _remove(self, key: str) -> None:
        with suppress(FileNotFoundError):
            self._fs.rm_file(self._path(key))

    def _sizes(self, keys: list[str]) -> dict[str, int | None]:
        # One listing per key prefix (``ab/``) instead of one request per key.
        by_folder: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            by_folder[f"{self._root}/{key[:2]}"].append(key)
        found: dict[str, int | None] = dict.fromkeys(keys)
        for folder, wanted in by_folder.items():
            self._fs.invalidate_cache(folder)  # see files removed by others since
            try:
                listing = self._fs.ls(folder, detail=True)
            except FileNotFoundError:
                continue
            sizes = {
                str(info["name"]).rstrip("/").rpartition("/")[2]: int(info.get("size") or 0)
                for info in listing
                if info.get("type") == "file"
            }
            found.update((key, sizes[key]) for key in wanted if key in sizes)
        return found

    def _list(self) -> Iterator[tuple[str, int, datetime | None]]:
        self._fs.invalidate_cache(self._root)
        try:
            files = self._fs.find(self._root, detail=True)
        except FileNotFoundError:
            return
        prefix = self._root.rstrip("/") + "/"
        for name, info in files.items():
            path = str(name)
            if info.get("type") == "file" and path.startswith(prefix):
                yield path[len(prefix) :], int(info.get("size") or 0), _modified(info)

    def _temp_name(self, path: str) -> str:
        return f"{self._root}/{path}"

    def _local_path(self, key: str) -> Path | None:
        if isinstance(self._fs, fsspec.implementations.local.LocalFileSystem):
            return Path(self._path(key))
        return None


def _modified(info: dict[str, Any]) -> datetime | None:
    """When a file was last written, from an fsspec ``info`` dict (the key varies by backend:
    ``mtime`` on local disks, ``LastModified`` on S3, ``created`` in memory)."""
    for field in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(field)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            with suppress(ValueError):
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
