"""The drift monitor's answer: a :class:`FeatureDrift` per test, gathered in a :class:`DriftReport`.

A report covers one window, or one chunk of a window (``chunk`` names it). ``family`` is how
many tests shared the Benjamini-Hochberg step its decisions came from: the report's own tests
for :meth:`~regrow.monitor.drift_monitor.DriftMonitor.check`, every chunk's tests together for
:meth:`~regrow.monitor.drift_monitor.DriftMonitor.check_chunks`; :attr:`DriftReport.control`
says it in words.

>>> nan = float("nan")
>>> skipped = FeatureDrift("d", None, "skipped", nan, nan, nan, nan, (nan, nan), False, "why")
>>> tested = FeatureDrift("x", None, "ks", 0.3, 0.1, 1e-6, 0.3, (0.2, 0.4), True, "why", 2e-6)
>>> report = DriftReport((skipped, tested), rows=500, fdr=0.05)
>>> report.family, report.control
(1, 'Benjamini-Hochberg at q=0.05 across 1 test')
>>> report.to_dict()["drifted_columns"], report.to_dict()["chunk"]
(['x'], None)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["EFFECT_NAMES", "DriftReport", "FeatureDrift"]

EFFECT_NAMES = {
    "ks": "KS distance",
    "wasserstein": "Wasserstein distance / reference std",
    "psi": "PSI",
    "jensen_shannon": "Jensen-Shannon distance",
    "chi_square": "Cramér's V",
    "unseen": "share of never-seen values",
    "null_rate": "absolute difference in null rate",
}
"""What each test's effect size is, in words."""


@dataclass(frozen=True)
class FeatureDrift:
    """The decision for one column in one slice (``slice`` is None for the whole window)."""

    column: str
    slice: str | None
    test: str
    statistic: float
    threshold: float
    p_value: float
    effect: float
    effect_interval: tuple[float, float]
    drifted: bool
    why: str
    adjusted_p_value: float = math.nan
    error_bound: float | None = None
    margin: float | None = None  # the effect never flagged ("practically irrelevant")

    @property
    def tested(self) -> bool:
        """Whether a p-value was computed (schema and skipped rows have none)."""
        return not math.isnan(self.p_value)

    def to_dict(self) -> dict[str, Any]:
        """JSON types only (NaN becomes None)."""
        out = asdict(self)
        out["effect_interval"] = [_json(v) for v in self.effect_interval]
        return {k: _json(v) if isinstance(v, float) else v for k, v in out.items()}


@dataclass(frozen=True)
class DriftReport:
    """Every :class:`FeatureDrift` of one window (or chunk), in reference column order per slice.

    ``family`` defaults (0) to the number of the report's own tested features. ``reference``
    names what the window was compared with, where a monitor compares it with more than one
    (a system whose members were trained on different snapshots); None otherwise.
    """

    features: tuple[FeatureDrift, ...]
    rows: int
    fdr: float
    slices: tuple[str, ...] = field(default=())
    chunk: str | None = None
    family: int = 0
    reference: str | None = None

    def __post_init__(self) -> None:
        if self.family == 0:
            object.__setattr__(self, "family", sum(1 for f in self.features if f.tested))

    @property
    def drifted(self) -> tuple[FeatureDrift, ...]:
        """The drifted features."""
        return tuple(f for f in self.features if f.drifted)

    @property
    def drifted_columns(self) -> list[str]:
        """Columns drifted in the whole window or in any slice, in report order."""
        return list(dict.fromkeys(f.column for f in self.features if f.drifted))

    @property
    def control(self) -> str:
        """How the false discovery rate is controlled, in words."""
        tests = "test" if self.family == 1 else "tests"
        return f"Benjamini-Hochberg at q={self.fdr:g} across {self.family:,} {tests}"

    def table(self) -> list[dict[str, Any]]:
        """One row per feature, for display (JSON types)."""
        return [f.to_dict() for f in self.features]

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON types."""
        return {
            "rows": self.rows,
            "fdr": self.fdr,
            "slices": list(self.slices),
            "chunk": self.chunk,
            "reference": self.reference,
            "family": self.family,
            "control": self.control,
            "drifted_columns": self.drifted_columns,
            "features": self.table(),
        }


def _json(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value
