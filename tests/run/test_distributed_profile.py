"""Distributed profiling, in this process: partitions merged equal one process's profile.

Ray runs the same partition tasks in tests/test_ray_cluster.py, on a two-node cluster.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from regrow.catalog.store import open_store
from regrow.errors import ConfigError, DataError
from regrow.monitor.distributed import (
    StoredParquet,
    compare_profiles,
    plan_parquet_parts,
    profile_partitions,
)
from regrow.monitor.drift_monitor import DriftMonitor
from regrow.monitor.profile import Profile


def window(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, rows)
    x[rng.uniform(size=rows) < 0.02] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "n": rng.poisson(3, rows),
            "c": rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2]),
            "u": rng.lognormal(shift, 1.0, rows),
        }
    )


@pytest.fixture
def parquet(tmp_path: Path) -> Path:
    path = tmp_path / "window.parquet"
    pq.write_table(
        pa.Table.from_pandas(window(60_000, 0), preserve_index=False), path, row_group_size=7_000
    )
    return path


def test_partitions_cover_every_row_once(parquet: Path) -> None:
    groups = plan_parquet_parts(parquet, 4)
    assert len(groups) == 4
    spans = [(p.row_group, p.start, p.stop) for g in groups for p in g]
    assert sum(stop - start for _, start, stop in spans) == 60_000
    assert len(set(spans)) == len(spans)
    # Fewer row groups than partitions: row groups are cut.
    assert len(plan_parquet_parts(parquet, 20)) == 20


def test_merged_partitions_equal_one_process_within_the_sketch_error(parquet: Path) -> None:
    single = Profile.of(pq.read_table(parquet), k=200)
    merged = profile_partitions(parquet, partitions=6, executor="local", k=200)
    comparison = compare_profiles(merged, single)
    assert comparison.mismatches == ()
    assert comparison.agree
    assert merged["x"].rank_error > 0  # the small k puts the sketch in estimation mode
    assert set(comparison.rank_gaps) == {"x", "n", "u"}


def test_drift_decisions_on_merged_and_single_profiles_agree(parquet: Path) -> None:
    single = Profile.of(pq.read_table(parquet))
    merged = profile_partitions(parquet, partitions=5, executor="local")
    drifted = window(20_000, 1, shift=0.3).assign(n=window(20_000, 2)["n"])
    a = DriftMonitor(single).check(drifted)
    b = DriftMonitor(merged).check(drifted)
    assert sorted(a.drifted_columns) == sorted(b.drifted_columns) == ["u", "x"]
    assert [f.drifted for f in a.features] == [f.drifted for f in b.features]


def test_a_snapshot_artifact_and_frames_can_be_profiled(tmp_path: Path) -> None:
    data = window(5_000, 3)
    store = open_store(tmp_path / "store")
    key = store.put(_parquet_bytes(data))
    stored = profile_partitions(
        StoredParquet(store.url, key),
        partitions=3,
        executor="local",
        slices={"big": "x > 0"},
        columns=["x", "c"],
    )
    frames = profile_partitions(
        [data.iloc[:1000], data.iloc[1000:]],
        executor="local",
        slices={"big": "x > 0"},
        columns=["x", "c"],
    )
    single = Profile.of(data[["x", "c"]], slices={"big": "x > 0"})
    assert compare_profiles(stored, single).agree
    assert compare_profiles(frames, single).agree
    assert stored.slices["big"]["x"].count == single.slices["big"]["x"].count


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, row_group_size=2000)
    return bytes(sink.getvalue().to_pybytes())


def test_bad_sources_and_partition_counts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no Parquet file or folder at"):
        profile_partitions(str(tmp_path / "missing.parquet"), executor="local")
    with pytest.raises(ConfigError, match=r"partitions must be an integer >= 1 \(got 0\)"):
        profile_partitions([window(10, 0)], partitions=0, executor="local")
    with pytest.raises(ConfigError, match="unknown executor 'spark'"):
        profile_partitions([window(10, 0)], executor="spark")  # type: ignore[arg-type]
