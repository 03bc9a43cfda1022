"""Candidate versus baseline on the same rows and every slice, with intervals, then a gate.

The built-in gate blesses a candidate only when the paired bootstrap interval of its
improvement lies above ``min_improvement`` on the whole data, and no slice gets worse by more
than ``max_slice_regression``. With no baseline there is nothing to beat: the verdict is
"none" (DESIGN.md: an evaluation with no gate does not bless).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from regrow.data.snapshot import apply_slice
from regrow.errors import DataError
from regrow.evaluate.metrics import Metric, default_metric, get_metric, paired_bootstrap
from regrow.model import FittedSystem

__all__ = ["Comparison", "Gate", "MemberOutputs", "compare"]

#: Members' outputs of a version on the rows of a frame, when the caller keeps them (members a
#: candidate shares with its baseline are then predicted once; :class:`regrow.cache.OutputCache`).
MemberOutputs = Callable[[FittedSystem, pd.DataFrame], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class Gate:
    """When a candidate is blessed: a significant improvement and no slice much worse."""

    min_improvement: float = 0.0
    max_slice_regression: float = 0.02
    level: float = 0.95


@dataclass(frozen=True)
class Comparison:
    """Metric values, the improvement's interval, per-slice results, and the verdict.

    Each slice maps to ``rows``, ``candidate`` and ``baseline`` values and, with a baseline,
    ``improvement`` (positive: better), ``delta`` (candidate minus baseline) and ``delta_ci``
    (the paired bootstrap interval of ``delta``, as for the whole data).
    """

    metric: str
    higher_is_better: bool
    candidate: float
    baseline: float | None
    delta: float | None
    delta_ci: tuple[float, float] | None
    rows: int
    slices: dict[str, dict[str, Any]] = field(default_factory=dict)
    verdict: str = "none"
    reasons: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds (evaluate)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form, as stored in the catalog."""
        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "candidate": _num(self.candidate),
            "baseline": None if self.baseline is None else _num(self.baseline),
            "delta": None if self.delta is None else _num(self.delta),
            "delta_ci": [_num(v) for v in self.delta_ci] if self.delta_ci else None,
            "rows": self.rows,
            "slices": self.slices,
        }


def _num(value: float) -> float | None:
    """A metric value for JSON: None where it is undefined (NaN)."""
    return value if np.isfinite(value) else None


def _scores(model: FittedSystem, frame: pd.DataFrame, outputs: MemberOutputs | None) -> np.ndarray:
    """Probabilities (classification) or values, combined from the members' outputs."""
    members = outputs(model, frame) if outputs is not None else model.member_outputs(frame)
    return np.asarray(model.output_of(members), dtype=float)


def _improvement(metric: Metric, cand: float, base: float) -> float:
    return cand - base if metric.higher_is_better else base - cand


def compare(
    candidate: FittedSystem,
    baseline: FittedSystem | None,
    frame: pd.DataFrame,
    *,
    metric: str | None = None,
    slices: Mapping[str, str] | None = None,
    gate: Gate | None = None,
    n_boot: int = 300,
    seed: int = 0,
    outputs: MemberOutputs | None = None,
) -> Comparison:
    """Compare ``candidate`` with ``baseline`` on ``frame`` and apply ``gate``.

    ``outputs`` gives a version's members' outputs on the frame when the caller keeps them
    (by default they are predicted).
    """
    if candidate.target not in frame.columns:
        raise DataError(
            f"the evaluation data has no target column {candidate.target!r}",
            hint="evaluate on a labelled snapshot",
        )
    if len(frame) == 0:
        raise DataError("the evaluation data is empty", hint="evaluate on a snapshot with rows")
    m = get_metric(metric or default_metric(candidate.task), candidate.task)
    gate = gate or Gate()
    y = frame[candidate.target].to_numpy()
    cand = _scores(candidate, frame, outputs)
    base = _scores(baseline, frame, outputs) if baseline is not None else None
    classes = candidate.classes_
    if baseline is not None and baseline.classes_ != classes:
        raise DataError(
            f"{candidate.ref} predicts classes {classes} but {baseline.ref} predicts "
            f"{baseline.classes_}",
            hint="compare versions of the same system",
        )
    cand_value = m.fn(y, cand, classes)
    slice_results: dict[str, dict[str, Any]] = {}
    reasons: list[str] = []
    for name, expr in (slices or {}).items():
        rows = apply_slice(frame, name, expr).index
        pos = frame.index.get_indexer(rows)
        if len(pos) == 0:
            slice_results[name] = {"rows": 0, "candidate": None, "baseline": None}
            continue
        entry: dict[str, Any] = {
            "rows": len(pos),
            "candidate": _num(m.fn(y[pos], cand[pos], classes)),
        }
        if base is not None:
            entry["baseline"] = _num(m.fn(y[pos], base[pos], classes))
            if entry["candidate"] is None or entry["baseline"] is None:
                slice_results[name] = entry
                continue
            entry["improvement"] = _improvement(m, entry["candidate"], entry["baseline"])
            entry["delta"] = entry["candidate"] - entry["baseline"]
            lo_s, hi_s = paired_bootstrap(
                m, y[pos], cand[pos], base[pos], classes=classes, n_boot=n_boot, seed=seed,
                level=gate.level,
            )  # fmt: skip
            entry["delta_ci"] = [_num(lo_s), _num(hi_s)]
            if entry["improvement"] < -gate.max_slice_regression:
                reasons.append(
                    f"slice {name!r} is worse by {-entry['improvement']:.4f} {m.name} "
                    f"(limit {gate.max_slice_regression})"
                )
        slice_results[name] = entry
    if base is None:
        return Comparison(
            m.name,
            m.higher_is_better,
            cand_value,
            None,
            None,
            None,
            len(frame),
            slice_results,
            "none",
            ("no baseline to compare with",),
        )
    base_value = m.fn(y, base, classes)
    lo, hi = paired_bootstrap(
        m, y, cand, base, classes=classes, n_boot=n_boot, seed=seed, level=gate.level
    )
    improve_lo = lo if m.higher_is_better else -hi
    improve_hi = hi if m.higher_is_better else -lo
    delta = cand_value - base_value
    if not improve_lo > gate.min_improvement:
        reasons.insert(
            0,
            f"{m.name} improvement {_improvement(m, cand_value, base_value):+.4f} has a "
            f"{gate.level:.0%} interval [{improve_lo:+.4f}, {improve_hi:+.4f}] that does not "
            f"lie above {gate.min_improvement}",
        )
    verdict = "rejected" if reasons else "blessed"
    if verdict == "blessed":
        reasons.append(
            f"{m.name} improved by {_improvement(m, cand_value, base_value):+.4f} "
            f"({gate.level:.0%} interval [{improve_lo:+.4f}, {improve_hi:+.4f}])"
        )
    return Comparison(
        m.name,
        m.higher_is_better,
        cand_value,
        base_value,
        delta,
        (lo, hi),
        len(frame),
        slice_results,
        verdict,
        tuple(reasons),
    )
