"""regrow.data exports a sorted, complete public namespace."""

from __future__ import annotations

import regrow.data


def test_all_is_sorted_and_every_name_exists() -> None:
    assert regrow.data.__all__ == sorted(regrow.data.__all__)
    for name in regrow.data.__all__:
        assert hasattr(regrow.data, name), name


def test_the_documented_api_is_exported() -> None:
    assert {
        "ColumnSchema",
        "PreparedSnapshot",
        "Schema",
        "SchemaDiff",
        "apply_slice",
        "column_hash",
        "prepare_snapshot",
        "profile_table",
        "read_parquet",
        "to_arrow",
        "to_pandas",
    } <= set(regrow.data.__all__)
