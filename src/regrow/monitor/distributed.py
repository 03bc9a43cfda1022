"""Distributed profiling: profile the partitions of a large window apart, then merge.

:class:`~regrow.monitor.profile.Profile` is mergeable, so a window too large for one process
is profiled per partition (one Ray task each, or one after the other in this process) and
the partial profiles are merged. Counts, nulls, min, max and category counts (up to
:data:`~regrow.monitor.profile.DISTINCT_CAP` distinct values) come out exact; mean and ``M2``
equal the single-process values up to floating-point rounding; each quantile sketch keeps its
stated rank error (:attr:`~regrow.monitor.profile.ColumnProfile.rank_error`, 0.07 % at the
default ``k``) after merging, so drift decisions made against the merged profile agree with
those made against the single-process one (see :func:`compare_profiles`).

Sources, and how partitions reach the workers (tasks carry locations, not rows, except for
in-memory frames):

- a Parquet file, a folder of Parquet files, or an fsspec URL of either: each task reads its
  own row ranges (by row group) from the path, which must be reachable from every worker;
- :class:`StoredParquet` (a snapshot's artifact: the store URL and key): each task opens the
  store and reads its row ranges of the artifact;
- a sequence of DataFrames or Arrow tables: one partition each, shipped through Ray's object
  store.

>>> import pandas as pd
>>> parts = [
...     pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]}),
...     pd.DataFrame({"x": [3.0, None], "c": ["a", None]}),
... ]
>>> merged = profile_partitions(parts, executor="local")
>>> single = Profile.of(pd.concat(parts))
>>> merged.rows, merged["x"].count, merged["c"].counts
(4, 3, (('a', 2), ('b', 1)))
>>> compare_profiles(merged, single).agree
True
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any, Literal

import numpy as np

from regrow.errors import ConfigError, DataError, MissingDependency
from regrow.monitor.profile import SKETCH_K, ColumnProfile, Profile, merge

__all__ = [
    "ParquetPart",
    "ProfileComparison",
    "StoredParquet",
    "compare_profiles",
    "plan_parquet_parts",
    "profile_partitions",
]


@dataclass(frozen=True)
class StoredParquet:
    """A Parquet artifact in an artifact store (a snapshot's ``artifact`` key)."""

    store_url: str
    key: str


@dataclass(frozen=True)
class ParquetPart:
    """Rows ``[start, stop)`` of row group ``row_group`` of one Parquet file: a task's input."""

    source: str | StoredParquet
    row_group: int
    start: int
    stop: int


def _open_parquet(source: str | StoredParquet) -> Any:
    import pyarrow.parquet as pq

    if isinstance(source, StoredParquet):
        from regrow.catalog.store import open_store

        return pq.ParquetFile(io.BytesIO(open_store(source.store_url).get(source.key)))
    if "://" in source:
        import fsspec

        return pq.ParquetFile(fsspec.open(source, "rb").open())
    return pq.ParquetFile(source)


def _parquet_files(source: str) -> list[str]:
    if "://" in source:
        import fsspec

        fs, path = fsspec.core.url_to_fs(source)
        if not fs.isdir(path):
            return [source]
        protocol = source.split("://", 1)[0]
        found = sorted(p for p in fs.find(path) if p.endswith(".parquet"))
        return [f"{protocol}://{p}" for p in found]
    folder = Path(source)
    if folder.is_dir():
        return [str(p) for p in sorted(folder.rglob("*.parquet"))]
    if not folder.is_file():
        raise DataError(
            f"no Parquet file or folder at {source!r}",
            hint="pass the path of a .parquet file or of a folder holding them",
        )
    return [source]


def plan_parquet_parts(
    source: str | os.PathLike[str] | StoredParquet, partitions: int
) -> list[list[ParquetPart]]:
    """Split the rows of a Parquet file/folder/artifact into ``partitions`` contiguous groups.

    Row groups are the unit; when there are fewer row groups than partitions, row groups are
    cut into row ranges. Groups have about equal row counts; none is empty unless the source
    has fewer rows than ``partitions``.
    """
    files: list[str | StoredParquet] = (
        [source] if isinstance(source, StoredParquet) else list(_parquet_files(os.fspath(source)))
    )
    units: list[ParquetPart] = []
    for f in files:
        meta = _open_parquet(f).metadata
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if n:
                units.append(ParquetPart(f, g, 0, n))
    total = sum(u.stop - u.start for u in units)
    if total == 0:
        return [[]]
    if len(units) < partitions:  # cut row groups so each partition has work
        per = math.ceil(total / partitions)
        units = [
            ParquetPart(u.source, u.row_group, s, min(s + per, u.stop))
            for u in units
            for s in range(u.start, u.stop, per)
        ]
    target = total / partitions
    groups: list[list[ParquetPart]] = [[]]
    rows = 0
    for u in units:
        if groups[-1] and rows >= target * len(groups) and len(groups) < partitions:
            groups.append([])
        groups[-1].append(u)
        rows += u.stop - u.start
    return groups


def _read_parts(parts: Sequence[ParquetPart], columns: Sequence[str] | None) -> Any:
    import pyarrow as pa

    tables = []
    handles: dict[str | StoredParquet, Any] = {}
    for part in parts:
        handle = handles.get(part.source)
        if handle is None:
            handle = handles[part.source] = _open_parquet(part.source)
        group = handle.read_row_group(part.row_group, columns=list(columns) if columns else None)
        tables.append(group.slice(part.start, part.stop - part.start))
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _profile_part(
    data: Any,
    slices: Mapping[str, str] | None,
    k: int,
    columns: Sequence[str] | None,
) -> Profile:
    """One partition's profile (what a worker runs)."""
    if isinstance(data, list):
        data = _read_parts(data, columns)
    elif columns:
        from regrow.data.frames import to_arrow

        data = to_arrow(data).select(list(columns))
    return Profile.of(data, slices=slices, k=k)


def profile_partitions(
    source: str | os.PathLike[str] | StoredParquet | Sequence[Any],
    *,
    partitions: int = 8,
    slices: Mapping[str, str] | None = None,
    columns: Sequence[str] | None = None,
    k: int = SKETCH_K,
    executor: Literal["ray", "local"] = "ray",
    address: str | None = None,
    num_cpus: float = 1.0,
) -> Profile:
    """The profile of ``source``, computed per partition and merged (see the module docs).

    ``partitions`` applies to Parquet sources (a sequence of frames is already partitioned).
    ``executor="ray"`` runs one Ray task per partition (``num_cpus`` each) on the cluster this
    process is connected to, else at ``address``, else on a private local instance started
    for the call and shut down after it; ``"local"`` profiles the partitions one after the
    other in this process.
    """
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ConfigError(
            f"partitions must be an integer >= 1 (got {partitions!r})",
            hint="for example partitions=8, about one per CPU of the cluster",
        )
    if executor not in ("ray", "local"):
        raise ConfigError(
            f"unknown executor {executor!r} for distributed profiling",
            hint="use 'ray' or 'local'",
        )
    inputs: list[Any]
    if isinstance(source, str | os.PathLike | StoredParquet):
        inputs = list(plan_parquet_parts(source, partitions))
    elif isinstance(source, Sequence) and source:
        inputs = list(source)
    else:
        raise DataError(
            f"cannot profile {type(source).__name__} {source!r:.80}",
            hint="pass a Parquet path or URL, a StoredParquet, or a non-empty list of frames",
        )
    if executor == "local":
        parts = [_profile_part(i, slices, k, columns) for i in inputs]
    else:
        parts = _on_ray(inputs, slices, k, columns, address, num_cpus)
    return reduce(merge, parts)


def _on_ray(
    inputs: list[Any],
    slices: Mapping[str, str] | None,
    k: int,
    columns: Sequence[str] | None,
    address: str | None,
    num_cpus: float,
) -> list[Profile]:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependency("ray", "ray") from exc
    started = False
    if not ray.is_initialized():
        try:
            ray.init(
                address=address or "local",
                include_dashboard=False,
                configure_logging=False,
                namespace="regrow",
            )
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            raise ConfigError(
                f"cannot connect to Ray at {address or 'a new local instance'!r}: {exc}",
                hint="check the address (the head's host:port), or pass executor='local'",
            ) from exc
        started = True
    try:
        task = ray.remote(_profile_part).options(num_cpus=num_cpus, name="regrow:profile")
        refs = [task.remote(i, slices, k, columns) for i in inputs]
        return list(ray.get(refs))
    finally:
        if started:
            ray.shutdown()


@dataclass(frozen=True)
class ProfileComparison:
    """How two profiles of the same rows differ: exact parts, moments, and sketch ranks.

    ``rank_gaps`` holds, per numeric column, the largest difference in normalised rank between
    the two sketches at 99 quantiles; ``rank_bounds`` what the sketches' stated errors allow
    (the sum of both). ``mismatches`` lists every exact part that differs.
    """

    mismatches: tuple[str, ...]
    rank_gaps: Mapping[str, float] = field(default_factory=dict)
    rank_bounds: Mapping[str, float] = field(default_factory=dict)

    @property
    def agree(self) -> bool:
        """No exact part differs and every sketch is within its stated error."""
        return not self.mismatches and all(
            self.rank_gaps[c] <= self.rank_bounds[c] + 1e-12 for c in self.rank_gaps
        )


def compare_profiles(a: Profile, b: Profile, *, rel_tol: float = 1e-9) -> ProfileComparison:
    """Compare profiles of the same rows (say merged partitions vs one process).

    Counts, nulls, min, max and complete category counts must be equal; mean and ``M2``
    equal within ``rel_tol``; quantile sketches within their stated rank errors. Slices
    present in both are compared too (their columns named ``"slice/column"``).
    """
    mismatches: list[str] = []
    gaps: dict[str, float] = {}
    bounds: dict[str, float] = {}
    if a.rows != b.rows:
        mismatches.append(f"rows: {a.rows} != {b.rows}")
    if list(a.columns) != list(b.columns):
        mismatches.append(f"columns: {list(a.columns)} != {list(b.columns)}")
    for name in [n for n in a.columns if n in b.columns]:
        _compare_column(name, a[name], b[name], rel_tol, mismatches, gaps, bounds)
    for s in [s for s in a.slices if s in b.slices]:
        inner = compare_profiles(a.slices[s], b.slices[s], rel_tol=rel_tol)
        mismatches += [f"{s}/{m}" for m in inner.mismatches]
        gaps.update({f"{s}/{c}": v for c, v in inner.rank_gaps.items()})
        bounds.update({f"{s}/{c}": v for c, v in inner.rank_bounds.items()})
    return ProfileComparison(tuple(mismatches), gaps, bounds)


def _compare_column(
    name: str,
    a: ColumnProfile,
    b: ColumnProfile,
    rel_tol: float,
    mismatches: list[str],
    gaps: dict[str, float],
    bounds: dict[str, float],
) -> None:
    for part in ("kind", "count", "nulls", "min", "max"):
        x, y = getattr(a, part), getattr(b, part)
        if x != y and not (isinstance(x, float) and math.isnan(x) and math.isnan(y)):
            mismatches.append(f"{name}.{part}: {x!r} != {y!r}")
    for part in ("mean", "m2"):
        x, y = getattr(a, part), getattr(b, part)
        both_nan = math.isnan(x) and math.isnan(y)
        if not both_nan and not math.isclose(x, y, rel_tol=rel_tol, abs_tol=1e-9):
            mismatches.append(f"{name}.{part}: {x!r} != {y!r}")
    if a.complete and b.complete and a.counts != b.counts:
        mismatches.append(f"{name}.counts differ")
    ka, kb = a.kll(), b.kll()
    if ka is None or kb is None:
        return
    # Both sketch the same rows: at any value their ranks differ by at most both errors.
    points = np.unique(np.asarray(ka.get_quantiles(np.linspace(0.01, 0.99, 99)), dtype=float))
    rank_a = np.asarray(ka.get_cdf(points))[:-1]
    rank_b = np.asarray(kb.get_cdf(points))[:-1]
    gaps[name] = float(np.max(np.abs(rank_a - rank_b)))
    bounds[name] = _rank_error(ka) + _rank_error(kb)


def _rank_error(sketch: Any) -> float:
    return float(sketch.normalized_rank_error(False)) if sketch.is_estimation_mode() else 0.0
