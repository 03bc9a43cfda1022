"""The scratch workspace a reproduction builds in: its own folder, SQLite catalog and store.

Nothing of the user's workspace is written while a version is rebuilt: the snapshots it
trained on are copied into the scratch store, the rebuilt components are recorded in the
scratch catalog under the fingerprints recomputed there, and a run and a system version
tie them together, so a kept scratch folder (``regrow reproduce --keep DIR``) is a
workspace of its own (``regrow --home DIR lineage churn:v1``). Unless kept, the folder is
removed on the way out, whatever the way out: an error, or Ctrl-C.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from regrow.catalog.catalog import Catalog
from regrow.catalog.records import SnapshotRecord
from regrow.catalog.store import ArtifactStore, open_store
from regrow.config import Config, restore_folder
from regrow.errors import ConfigError

__all__ = ["Scratch"]


class Scratch:
    """A throwaway workspace at ``folder`` (a new temporary folder if None).

    A given ``folder`` is kept afterwards; it must not exist yet, or be empty. Use it as a
    context manager: the catalog is closed, and a temporary folder removed, on exit. A
    given folder is left as it was found when the block fails or is interrupted: half a
    rebuild is no workspace to keep, and the same command can then run again.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.keep = folder is not None
        if folder is None:
            self.path = Path(tempfile.mkdtemp(prefix="regrow-reproduce-"))
            created = True
        else:
            self.path = Path(folder).expanduser().absolute()
            if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
                raise ConfigError(
                    f"the scratch folder {str(self.path)!r} exists and is not an empty folder",
                    hint="name a new folder for --keep; a reproduction never writes over one",
                )
            created = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
        self._created = created
        try:
            config = Config(home=self.path)
            config.write()
            self.catalog = Catalog(config.resolved_catalog_url())
            self.store: ArtifactStore = open_store(config.resolved_store_url())
        except BaseException:
            if created:
                self._remove()
            raise
        self._snapshots: dict[str, SnapshotRecord] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.catalog.close()
        if not self.keep:
            self._remove()
        elif exc_type is not None:  # a given folder, as it was found (new, or empty)
            restore_folder(self.path, (), made=self._created)

    def _remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def add_snapshot(
        self,
        record: SnapshotRecord,
        data: bytes,
        schema: Mapping[str, Any],
        profile: Mapping[str, Any],
    ) -> SnapshotRecord:
        """Copy snapshot ``record`` (its Parquet ``data``, schema spec and profile) in, once."""
        copied = self._snapshots.get(record.id)
        if copied is not None:
            return copied
        key = self.store.put(data)
        schema_record = self.catalog.register_schema(record.name, schema)
        copied = self.catalog.add_snapshot(
            id=record.id,
            name=record.name,
            schema_id=schema_record.id,
            rows=record.rows,
            columns=record.columns,
            column_hashes=record.column_hashes,
            artifact=key,
            time_column=record.time_column,
            slices=record.slices,
            profile=profile,
        )
        self._snapshots[record.id] = copied
        return copied
