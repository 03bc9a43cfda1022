"""Budgets for serving the candidate: predict time (``latency``) and artifact bytes (``size``).

* ``latency`` times the candidate's whole graph (transforms, members, ensemble) predicting
  on the first ``rows`` evaluation rows, ``runs`` times after one warm-up run, and reports
  the median in seconds per 1,000 rows (the interval is the fastest and slowest run). With
  ``max_ratio``, the baseline is timed the same way, runs interleaved, and the candidate may
  be at most that many times slower. Times depend on the machine and its load: the value
  differs from run to run, set budgets with room.
* ``size`` adds the bytes of the candidate's component artifacts in the store (a component
  fitted in memory counts the bytes it would be stored as).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, ClassVar

from pydantic import Field

from regrow.evaluate.gates.base import BaseGate, GateResult
from regrow.evaluate.gates.context import GateContext

__all__ = ["Latency", "Size", "artifact_bytes"]


class Latency(BaseGate):
    """Predicting takes at most ``max_seconds`` per 1,000 rows (the median of ``runs``)."""

    name: ClassVar[str] = "latency"
    deterministic: ClassVar[bool] = False

    max_seconds: float = Field(1.0, gt=0)
    """Seconds per 1,000 rows."""
    max_ratio: float | None = Field(None, gt=0)
    """At most this many times the baseline's time (None: not compared)."""
    runs: int = Field(5, ge=1, le=100)
    rows: int = Field(2000, ge=1)

    def check(self, context: GateContext) -> GateResult:
        """Time both versions on the same rows, interleaved."""
        sample = context.frame.head(self.rows)
        models = {"candidate": context.candidate}
        if self.max_ratio is not None and context.baseline is not None:
            models["baseline"] = context.baseline
        times: dict[str, list[float]] = {v: [] for v in models}
        for run in range(self.runs + 1):
            for v, model in models.items():
                started = time.perf_counter()
                if model.classes_ is not None:
                    model.predict_proba(sample)
                else:
                    model.predict(sample)
                if run:  # the first run warms caches up
                    times[v].append((time.perf_counter() - started) * 1000 / len(sample))
        median = {v: statistics.median(t) for v, t in times.items()}
        value = median["candidate"]
        fields: dict[str, Any] = {
            "value": value, "interval": (min(times["candidate"]), max(times["candidate"])),
            "threshold": self.max_seconds, "measure": "predict seconds per 1,000 rows",
            "details": {"rows": len(sample), "runs": self.runs, "seconds": times},
        }  # fmt: skip
        said = f"{value:.4f} s per 1,000 rows (median of {self.runs} runs on {len(sample):,} rows)"
        if value > self.max_seconds:
            return self.result("fail", f"{said}: over the budget of {self.max_seconds} s", **fields)
        if "baseline" in median and self.max_ratio is not None:
            ratio = value / median["baseline"] if median["baseline"] > 0 else float("inf")
            fields["details"]["ratio"] = ratio
            if ratio > self.max_ratio:
                return self.result(
                    "fail", f"{said}: {ratio:.2f} times the baseline's (limit {self.max_ratio})",
                    **fields,
                )  # fmt: skip
            said += f", {ratio:.2f} times the baseline's"
        return self.result("pass", f"{said}: within {self.max_seconds} s", **fields)


class Size(BaseGate):
    """The candidate's artifacts weigh at most ``max_bytes``."""

    name: ClassVar[str] = "size"
    needs: ClassVar[frozenset[str]] = frozenset({"store"})

    max_bytes: int = Field(500_000_000, gt=0)
    max_ratio: float | None = Field(None, gt=0)
    """At most this many times the baseline's bytes (None: not compared)."""

    def check(self, context: GateContext) -> GateResult:
        """Sum the artifacts' bytes (and the baseline's, with ``max_ratio``)."""
        sizes = artifact_bytes(context, "candidate")
        total = sum(sizes.values())
        fields: dict[str, Any] = {
            "value": float(total), "threshold": float(self.max_bytes), "measure": "artifact bytes",
            "details": {"components": sizes},
        }  # fmt: skip
        said = f"{_bytes(total)} in {len(sizes)} component artifact(s)"
        if total > self.max_bytes:
            return self.result("fail", f"{said}: over the budget of {_bytes(self.max_bytes)}",
                               **fields)  # fmt: skip
        if self.max_ratio is not None and context.baseline is not None:
            base = sum(artifact_bytes(context, "baseline").values())
            ratio = total / base if base else float("inf")
            fields["details"].update(baseline=base, ratio=ratio)
            if ratio > self.max_ratio:
                return self.result(
                    "fail", f"{said}: {ratio:.2f} times the baseline's {_bytes(base)} (limit "
                    f"{self.max_ratio})", **fields,
                )  # fmt: skip
        return self.result("pass", f"{said}: within {_bytes(self.max_bytes)}", **fields)


def artifact_bytes(context: GateContext, which: str) -> dict[str, int]:
    """Bytes of each component of the ``candidate`` or ``baseline`` that has an artifact."""
    from regrow import _pickling

    model = context.candidate if which == "candidate" else context.baseline
    if model is None:
        return {}
    keys = model.artifacts
    stored = context.store.sizes(keys.values()) if context.store is not None and keys else {}
    sizes: dict[str, int] = {}
    for name, component in model.components.items():
        size = stored.get(keys[name]) if name in keys else None
        if size is None and name not in keys and component.estimator is None:
            continue  # nothing fitted (an ensemble with set weights): nothing stored
        sizes[name] = size if size is not None else len(_pickling.dumps(component))
    return sizes


def _bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"  # pragma: no cover - the loop returns
