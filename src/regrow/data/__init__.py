"""Snapshots, schemas and profiles: regrow's data layer (it knows nothing of models).

>>> import pandas as pd
>>> from regrow.data import prepare_snapshot
>>> snap = prepare_snapshot(pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}))
>>> snap.schema.names, snap.rows
(('x', 'y'), 2)
"""

from __future__ import annotations

from regrow.data.column_hash import column_hash
from regrow.data.compat import Change, Compatibility, classify, classify_history
from regrow.data.frames import to_arrow, to_pandas
from regrow.data.profile import profile_table
from regrow.data.schema import ColumnSchema, Schema
from regrow.data.schema_diff import SchemaDiff
from regrow.data.snapshot import PreparedSnapshot, apply_slice, prepare_snapshot, read_parquet

__all__ = [
    "Change",
    "ColumnSchema",
    "Compatibility",
    "PreparedSnapshot",
    "Schema",
    "SchemaDiff",
    "apply_slice",
    "classify",
    "classify_history",
    "column_hash",
    "prepare_snapshot",
    "profile_table",
    "read_parquet",
    "to_arrow",
    "to_pandas",
]
