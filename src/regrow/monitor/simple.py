"""A deliberately simple drift rule over stored profiles (the monitoring issue replaces it).

A numeric column drifted when its mean moved by more than ``mean_shift`` reference standard
deviations, or its standard deviation changed by more than a factor ``std_ratio``; a
categorical column drifted when the total variation distance between its top-category
frequencies exceeds ``tv_distance``. Members are affected when they read a drifted column,
directly or through transforms.

>>> ref = {"columns": {"x": {"kind": "numeric", "count": 100, "mean": 0.0, "std": 1.0}}}
>>> cur = {"columns": {"x": {"kind": "numeric", "count": 100, "mean": 0.5, "std": 1.0}}}
>>> [d.column for d in column_drift(ref, cur)]
['x']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from regrow.system import System

__all__ = ["ColumnDrift", "affected_members", "column_drift"]


@dataclass(frozen=True)
class ColumnDrift:
    """One drifted column and the numbers behind the decision."""

    column: str
    statistic: str
    value: float
    threshold: float
    detail: str


def _columns(profile: Mapping[str, Any]) -> Mapping[str, Any]:
    cols = profile.get("columns", profile)
    return cols if isinstance(cols, Mapping) else {}


def _freqs(stats: Mapping[str, Any]) -> dict[str, float]:
    count = stats.get("count") or 0
    if not count:
        return {}
    top = stats.get("top") or []
    out: dict[str, float] = {}
    for item in top:
        value, n = (item["value"], item["count"]) if isinstance(item, Mapping) else item
        out[str(value)] = n / count
    other = stats.get("other") or 0
    if other:
        out["\x00other"] = other / count
    return out


def column_drift(
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    mean_shift: float = 0.25,
    std_ratio: float = 1.25,
    tv_distance: float = 0.1,
    ignore: tuple[str, ...] = (),
) -> list[ColumnDrift]:
    """The columns whose profile moved past the thresholds, in reference column order."""
    ref_cols, cur_cols = _columns(reference), _columns(current)
    drifted = []
    for col, ref in ref_cols.items():
        cur = cur_cols.get(col)
        if col in ignore or cur is None or not isinstance(ref, Mapping):
            continue
        if ref.get("mean") is not None and cur.get("mean") is not None:
            sd = ref.get("std") or 0.0
            if sd > 0:
                shift = abs(cur["mean"] - ref["mean"]) / sd
                if shift > mean_shift:
                    drifted.append(
                        ColumnDrift(
                            col,
                            "mean_shift_sd",
                            shift,
                            mean_shift,
                            f"mean {ref['mean']:.3g} -> {cur['mean']:.3g}",
                        )
                    )
                    continue
                cur_sd = cur.get("std") or 0.0
                ratio = max(cur_sd / sd, sd / cur_sd) if cur_sd > 0 else float("inf")
                if ratio > std_ratio:
                    drifted.append(
                        ColumnDrift(
                            col, "std_ratio", ratio, std_ratio, f"std {sd:.3g} -> {cur_sd:.3g}"
                        )
                    )
        elif ref.get("top") is not None and cur.get("top") is not None:
            a, b = _freqs(ref), _freqs(cur)
            tv = 0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))
            if tv > tv_distance:
                drifted.append(
                    ColumnDrift(col, "tv_distance", tv, tv_distance, "category frequencies moved")
                )
    return drifted


def affected_members(system: System, drifted: list[ColumnDrift]) -> list[str]:
    """Members that read a drifted column, directly or through transforms, in graph order."""
    cols = {d.column for d in drifted}
    return [m.name for m in system.members if system.raw_columns(m.name) & cols]
