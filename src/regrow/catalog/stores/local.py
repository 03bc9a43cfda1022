"""The default artifact store: a folder on the local file system, driven by direct os calls.

>>> import tempfile
>>> store = LocalStore(tempfile.mkdtemp())
>>> key = store.put(b"weights")
>>> store.get(key)
b'weights'
>>> store.exists(key), store.size(key)
(True, 7)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from regrow.catalog.stores.base import ArtifactStore

__all__ = ["LocalStore"]


class LocalStore(ArtifactStore):
    """Artifacts under the folder ``root`` (created on the first write).

    Each artifact is written to ``<root>/tmp/``, flushed to disk (``fsync``, unless
    ``fsync=False``), moved into place with :func:`os.replace`, which is atomic, and read
    back and hashed (unless ``verify_writes=False``). ``url`` is the absolute path of ``root``.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, fsync: bool = True, verify_writes: bool = True
    ) -> None:
        self.root = root
        self.fsync = fsync
        self.verify_writes = verify_writes
        self._root = Path(root).expanduser().absolute()
        self.url = str(self._root)

    def _path(self, key: str) -> Path:
        return self._root / key[:2] / key

    def _open_temp(self) -> tuple[str, IO[bytes]]:
        folder = self._root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f"{uuid.uuid4().hex}.part"
        return str(temp), open(temp, "xb")  # the caller closes it

    def _sync(self, handle: IO[bytes]) -> None:
        if self.fsync:
            os.fsync(handle.fileno())

    def _commit(self, temp: str, key: str) -> None:
        target = self._path(key)
        target.parent.mkdir(exist_ok=True)
        os.replace(temp, target)

    def _discard(self, temp: str) -> None:
        with suppress(FileNotFoundError):
            os.unlink(temp)

    def _open(self, key: str) -> IO[bytes]:
        return open(self._path(key), "rb")  # the caller closes it

    def _exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _size(self, key: str) -> int:
        return os.stat(self._path(key)).st_size

    def _remove(self, key: str) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self._path(key))

    def _local_path(self, key: str) -> Path:
        return self._path(key)

    def _list(self) -> Iterator[tuple[str, int, datetime | None]]:
        if not self._root.is_dir():
            return
        for folder in os.scandir(self._root):
            if not folder.is_dir(follow_symlinks=False):
                continue
            with suppress(FileNotFoundError), os.scandir(folder.path) as entries:
                for entry in entries:
                    with suppress(FileNotFoundError):  # removed while we walk: not there
                        if entry.is_file(follow_symlinks=False):
                            stat = entry.stat(follow_symlinks=False)
                            modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                            yield f"{folder.name}/{entry.name}", stat.st_size, modified

    def _temp_name(self, path: str) -> str:
        return str(self._root / path)
