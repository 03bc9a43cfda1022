"""The catalog's public namespace."""

from __future__ import annotations

import regrow.catalog
from regrow.catalog import records


def test_all_is_sorted_and_complete() -> None:
    exported = regrow.catalog.__all__
    assert exported == sorted(exported)
    assert set(records.__all__) <= set(exported)
    assert "Catalog" in exported
    for name in exported:
        assert getattr(regrow.catalog, name) is not None


def test_every_public_catalog_method_is_documented() -> None:
    catalog = regrow.catalog.Catalog
    for name in dir(catalog):
        if not name.startswith("_"):
            assert getattr(catalog, name).__doc__, f"Catalog.{name} has no docstring"
