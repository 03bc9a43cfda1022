"""Candidate versus baseline on the same rows and every slice, with intervals, then the gates.

:func:`judge` tabulates the evaluation metric for both versions on the whole data and every
slice, with the paired bootstrap interval of each difference, runs the gates
(:mod:`regrow.evaluate.gates`) on the same resamples, and turns their results into the
verdict: ``blessed`` only when every gate passed, ``rejected`` when one failed, ``none``
otherwise (no baseline, an inconclusive gate, no gate at all: DESIGN.md, an evaluation with
no gate does not bless). :func:`compare` does it for two fitted systems and a frame, with
today's default gates (``improvement`` above 0, no slice worse by more than 0.02).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from regrow.evaluate.gates import (
    Gate,
    GateContext,
    GateResult,
    Improvement,
    Inconclusive,
    SliceRegression,
    verdict,
)
from regrow.evaluate.resample import percentile_interval

if TYPE_CHECKING:
    import pandas as pd

    from regrow.model import FittedSystem

__all__ = ["DEFAULT_GATES", "Comparison", "Gate", "MemberOutputs", "compare", "judge"]

#: Members' outputs of a version on the rows of a frame, when the caller keeps them (members a
#: candidate shares with its baseline are then predicted once; :class:`regrow.cache.OutputCache`).
MemberOutputs = Callable[["FittedSystem", "pd.DataFrame"], Mapping[str, np.ndarray]]

#: The gates of the default policy: an improvement whose interval lies above 0, and no slice
#: worse by more than 0.02.
DEFAULT_GATES: tuple[Gate, ...] = (Improvement(), SliceRegression())


@dataclass(frozen=True)
class Comparison:
    """Metric values, the difference's interval, per-slice results, the gates and the verdict.

    Each slice maps to ``rows``, ``candidate`` and ``baseline`` values and, with a baseline,
    ``improvement`` (positive: better), ``delta`` (candidate minus baseline) and ``delta_ci``
    (the paired bootstrap interval of ``delta``, as for the whole data). ``gates`` holds each
    gate's result, in the order the policy lists them.
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
    gates: tuple[GateResult, ...] = ()
    level: float = 0.95
    resamples: int = 0
    notes: tuple[str, ...] = ()  # about the rows compared (set aside, trained on)

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
            "level": self.level,
            "resamples": self.resamples,
            "gates": [g.to_dict() for g in self.gates],
            "notes": list(self.notes),
        }


def _num(value: float) -> float | None:
    """A metric value for JSON: None where it is undefined (NaN)."""
    return value if math.isfinite(value) else None


def compare(
    candidate: FittedSystem,
    baseline: FittedSystem | None,
    frame: pd.DataFrame,
    *,
    metric: str | None = None,
    slices: Mapping[str, str] | None = None,
    gates: Sequence[Gate] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    inconclusive: Inconclusive = "none",
    outputs: MemberOutputs | None = None,
    **context: Any,
) -> Comparison:
    """Compare ``candidate`` with ``baseline`` on ``frame`` and run ``gates`` (default:
    :data:`DEFAULT_GATES`; an empty list blesses nothing).

    ``outputs`` gives a version's members' outputs on the frame when the caller keeps them
    (by default they are predicted); other keywords are fields of the
    :class:`~regrow.evaluate.gates.GateContext` (profiles, the store, version records ...).
    """

    def predict(model: FittedSystem, rows: pd.DataFrame) -> np.ndarray:
        members = outputs(model, rows) if outputs is not None and rows is frame else None
        if members is None:
            members = model.member_outputs(rows)
        return np.asarray(model.output_of(members, rows), dtype=float)

    ctx = GateContext.of(
        candidate, baseline, frame, metric=metric, slices=dict(slices or {}), n_boot=n_boot,
        seed=seed, level=level, predict=predict, **context,
    )  # fmt: skip
    return judge(ctx, DEFAULT_GATES if gates is None else gates, inconclusive=inconclusive)


def judge(
    context: GateContext, gates: Sequence[Gate], *, inconclusive: Inconclusive = "none"
) -> Comparison:
    """The metric table of ``context``, every gate's result, and the verdict."""
    results = tuple(gate.check(context) for gate in gates)
    decided, reasons = verdict(results, inconclusive=inconclusive)
    table = _table(context)
    whole = table.pop("all")
    return Comparison(
        metric=context.metric.name,
        higher_is_better=context.metric.higher_is_better,
        candidate=whole["candidate"] if whole["candidate"] is not None else math.nan,
        baseline=None if context.baseline_scores is None else _nan(whole["baseline"]),
        delta=whole.get("delta"),
        delta_ci=tuple(whole["delta_ci"]) if whole.get("delta_ci") else None,
        rows=context.rows,
        slices=table,
        verdict=decided,
        reasons=reasons,
        gates=results,
        level=context.level,
        resamples=context.n_boot,
    )


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _table(context: GateContext) -> dict[str, dict[str, Any]]:
    """Per group ("all", then each slice): rows, both values, improvement, delta, interval."""
    out: dict[str, dict[str, Any]] = {}
    paired = context.baseline_scores is not None
    for j, (name, rows) in enumerate(context.groups.items()):
        n = context.rows if rows is None else len(rows)
        if n == 0:
            out[name] = {"rows": 0, "candidate": None, "baseline": None}
            continue
        entry: dict[str, Any] = {"rows": n, "candidate": _num(context.value("candidate", name))}
        if paired:
            entry["baseline"] = _num(context.value("baseline", name))
            if entry["candidate"] is not None and entry["baseline"] is not None:
                entry["improvement"] = context.improvement(entry["candidate"], entry["baseline"])
                entry["delta"] = entry["candidate"] - entry["baseline"]
                low, high = percentile_interval(
                    context.draws[0, :, j] - context.draws[1, :, j], context.level
                )
                entry["delta_ci"] = [_num(low), _num(high)]
        out[name] = entry
    return out
