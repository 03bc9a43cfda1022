"""Stored members' outputs (``catalog.outputs``), on SQLite and PostgreSQL: a cache index."""

from __future__ import annotations

import pytest

from regrow.catalog import Catalog
from regrow.errors import NotFound

from .conftest import Builder

K1, K2 = "1" * 64, "2" * 64


def test_tables_are_found_by_key_and_snapshot_oldest_first(catalog: Catalog) -> None:
    build = Builder(catalog)
    window, other = build.snapshot("window"), build.snapshot("other")
    catalog.outputs.add(key=K1, snapshot_id=window.id, artifact="a" * 64, rows=10)
    catalog.outputs.add(key=K1, snapshot_id=window.id, artifact="b" * 64, rows=5)
    catalog.outputs.add(key=K1, snapshot_id=window.id, artifact="a" * 64, rows=10)  # again: no-op
    catalog.outputs.add(key=K2, snapshot_id=other.id, artifact="c" * 64, rows=7)
    assert catalog.outputs.find([K1, K2], [window.id]) == {K1: ["a" * 64, "b" * 64]}
    assert catalog.outputs.find([K1, K2], [window.id, other.id])[K2] == ["c" * 64]
    assert catalog.outputs.find([], [window.id]) == {}
    assert catalog.outputs.artifacts() == {"a" * 64, "b" * 64, "c" * 64}
    assert catalog.outputs.holds("c" * 64)
    assert not catalog.outputs.holds("d" * 64)
    assert catalog.integrity.referenced("b" * 64)


def test_a_table_needs_a_stored_snapshot(catalog: Catalog) -> None:
    with pytest.raises(NotFound, match="snapshot"):
        catalog.outputs.add(key=K1, snapshot_id="f" * 64, artifact="a" * 64, rows=1)
    assert catalog.outputs.artifacts() == set()
