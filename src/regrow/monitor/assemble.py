"""Pieces of a monitor result shared by the system monitor and the external-model monitor:
reference-vs-window distributions, alerts from drift and multivariate signals, and the
statement of the false-discovery control across chunks.

>>> import pandas as pd
>>> ref = pd.DataFrame({"x": range(100), "c": ["a", "b"] * 50})
>>> dist = distributions(ref, ref, ["x", "c"], bins=4)
>>> dist["x"]["kind"], len(dist["x"]["edges"]), dist["c"]["categories"]
('numeric', 5, ['a', 'b'])
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from regrow.monitor.drift_monitor import DriftReport
from regrow.monitor.signals import Alert

__all__ = ["distributions", "drift_alerts", "fdr_statement", "multivariate_alerts"]

_TOP = 10


def distributions(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    columns: Iterable[str],
    *,
    bins: int = 20,
    reference_key: Hashable | None = None,
) -> dict[str, dict[str, Any]]:
    """Per column, the share of reference and window values per bin: numeric columns on the
    reference's quantile edges (values beyond them count in the end bins), categorical ones
    on the reference's top categories and ``other``. Nulls are left out; a column missing on
    either side is skipped. With ``reference_key``, which must identify the reference's rows,
    the reference's side (edges, top categories, shares) is kept for the process
    (:data:`regrow.monitor.shared.DISTRIBUTIONS`)."""
    wanted = tuple(c for c in dict.fromkeys(columns) if c in reference.columns)
    if reference_key is None:
        sides = _reference_sides(reference, wanted, bins)
    else:
        from regrow.monitor.shared import DISTRIBUTIONS

        sides = DISTRIBUTIONS.get(
            ("distributions", reference_key, tuple(reference.columns), wanted, bins),
            lambda: _reference_sides(reference, wanted, bins),
        )
    out: dict[str, dict[str, Any]] = {}
    for col in columns:
        side = sides.get(col)
        if side is None or col not in window.columns:
            continue
        win = window[col]
        if side.edges is not None:
            w = pd.to_numeric(win, errors="coerce").to_numpy(float)
            w = w[np.isfinite(w)]
            out[col] = {
                "kind": "numeric",
                "edges": [float(e) for e in side.edges],
                "reference": list(side.shares),
                "window": _shares(w, side.edges),
            }
            continue
        top = list(side.top)
        w_s = win.dropna().astype(str)
        other = side.more or bool((~w_s.isin(top)).any())
        cats = [*top, "other"] if other else top
        out[col] = {
            "kind": "categorical",
            "categories": cats,
            "reference": list(side.shares_other if other else side.shares),
            "window": _category_shares(w_s, top, cats),
        }
    return out


@dataclass(frozen=True)
class _Side:
    """The reference's side of one column's distribution: numeric (``edges`` and its
    ``shares``) or categorical (``top`` categories, whether it has ``more``, its shares
    without and with an ``other`` bin)."""

    edges: np.ndarray | None = None
    shares: tuple[float, ...] = ()
    top: tuple[str, ...] = ()
    more: bool = False
    shares_other: tuple[float, ...] = ()


def _reference_sides(
    reference: pd.DataFrame, columns: Sequence[str], bins: int
) -> dict[str, _Side]:
    """The reference's side of each column (none for a numeric column without values)."""
    out: dict[str, _Side] = {}
    for col in columns:
        ref = reference[col]
        if pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref):
            r = pd.to_numeric(ref, errors="coerce").to_numpy(float)
            r = r[np.isfinite(r)]
            if len(r) == 0:
                continue
            edges = np.unique(np.quantile(r, np.linspace(0, 1, bins + 1)))
            if len(edges) < 2:
                edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
            out[col] = _Side(edges, tuple(_shares(r, edges)))
            continue
        r_s = ref.dropna().astype(str)
        top = r_s.value_counts().index[:_TOP].tolist()
        out[col] = _Side(
            None,
            tuple(_category_shares(r_s, top, top)),
            tuple(top),
            bool(r_s.nunique() > len(top)),
            tuple(_category_shares(r_s, top, [*top, "other"])),
        )
    return out


def _shares(values: np.ndarray, edges: np.ndarray) -> list[float]:
    if len(values) == 0:
        return [0.0] * (len(edges) - 1)
    clipped = np.clip(values, edges[0], edges[-1])
    counts, _ = np.histogram(clipped, bins=edges)
    return [float(c) / len(values) for c in counts]


def _category_shares(values: pd.Series, top: Sequence[str], cats: Sequence[str]) -> list[float]:
    if len(values) == 0:
        return [0.0] * len(cats)
    counts = values.value_counts()
    shares = [float(counts.get(c, 0)) / len(values) for c in top]
    if len(cats) > len(top):
        shares.append(float((~values.isin(top)).sum()) / len(values))
    return shares


def drift_alerts(reports: Iterable[DriftReport]) -> list[Alert]:
    """One alert per column drifted on the whole window (not a slice), per report's chunk."""
    alerts = []
    for report in reports:
        chunk = report.chunk
        for f in report.features:
            if f.drifted and f.slice is None:
                # In effect units: the effect and the margin it had to exceed (the p-value
                # had to pass the FDR step too; the why says both).
                effect = f.effect if math.isfinite(f.effect) else f.statistic
                bar = f.margin if f.margin is not None else f.threshold
                alerts.append(
                    Alert(f"drift {f.column}", chunk, float(effect), float(bar), "above", f.why)
                )
    return alerts


def multivariate_alerts(results: Iterable[Any]) -> list[Alert]:
    """One alert per multivariate check that found drift."""
    return [
        Alert(f"multivariate {r.method}", r.chunk, float(r.value), float(r.threshold), "above",
              r.why)
        for r in results
        if r.drifted
    ]  # fmt: skip


def fdr_statement(reports: Sequence[DriftReport], columns: int) -> str:
    """How the false discovery rate is controlled across the reports' tests, in words."""
    if not reports:
        return ""
    chunks = len({r.chunk for r in reports})
    chunked = f"{chunks} chunk{'s' if chunks != 1 else ''}"
    sizes: dict[str | None, int] = {}  # each reference's family (None: a monitor's only one)
    for r in reports:
        sizes[r.reference] = max(sizes.get(r.reference, 0), r.family or len(r.features))
    named = dict(sorted((ref, n) for ref, n in sizes.items() if ref is not None))
    if len(named) > 1:  # a family per reference: "one family" of the largest was wrong
        listed = ", ".join(f"{ref}: {n:,}" for ref, n in named.items())
        return (
            f"Benjamini-Hochberg at q={reports[0].fdr:g} within each reference's tests "
            f"({listed}; columns × slices × {chunked}): at most that share of each "
            "reference's drifted flags are expected to be false"
        )
    return (
        f"Benjamini-Hochberg at q={reports[0].fdr:g} across {max(sizes.values()):,} tests "
        f"({columns} columns × slices × {chunked}, one "
        "family): at most that share of the drifted flags are expected to be false"
    )
