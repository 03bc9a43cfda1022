"""What a reproduction found: one :class:`ComponentReproduction` per component, and the report.

A component is ``identical`` when its rebuilt artifact has the recorded bytes (the store's
key is their sha256), ``equivalent`` when the bytes differ but its outputs agree with the
original's within the tolerance, and ``differs`` otherwise, or whenever the fingerprint
recomputed now is not the recorded one. A version is reproduced when none differs.

>>> c = ComponentReproduction(
...     name="geo", kind="member", version_id="ab" * 16, fingerprint="f1",
...     rebuilt_fingerprint="f1", artifact="k1", rebuilt_artifact="k2", max_diff=0.0, rows=500,
... )
>>> c.verdict_for(tolerance=1e-6)
'equivalent'
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = ["VERDICTS", "ComponentReproduction", "ReproduceReport", "Verdict"]

Verdict = Literal["identical", "equivalent", "differs"]
VERDICTS: tuple[Verdict, ...] = ("identical", "equivalent", "differs")


@dataclass(frozen=True)
class ComponentReproduction:
    """One component of a version, rebuilt from its record and compared with the original.

    ``artifact`` and ``rebuilt_artifact`` are store keys: the sha256 of the stored bytes.
    ``max_diff`` is the largest absolute difference between the original's and the rebuilt
    component's outputs (values, probabilities or transformed columns) on ``rows`` rows of
    its training snapshot; None when they were not compared (identical bytes, or no rows).
    ``reasons`` say why it differs; ``notes`` what else was seen (bytes that differ while the
    outputs agree, code that could not be re-read).
    """

    name: str
    kind: str
    version_id: str
    fingerprint: str
    rebuilt_fingerprint: str
    artifact: str | None
    rebuilt_artifact: str
    max_diff: float | None
    rows: int
    verdict: Verdict = "differs"
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def fingerprint_matches(self) -> bool:
        """Whether the fingerprint recomputed now is the recorded one."""
        return self.fingerprint == self.rebuilt_fingerprint

    @property
    def bytes_match(self) -> bool:
        """Whether the rebuilt artifact has exactly the recorded bytes."""
        return self.artifact == self.rebuilt_artifact

    def verdict_for(self, *, tolerance: float) -> Verdict:
        """The verdict these facts give under ``tolerance``."""
        if not self.fingerprint_matches:
            return "differs"
        if self.bytes_match:
            return "identical"
        if self.max_diff is not None and self.max_diff <= tolerance:
            return "equivalent"
        return "differs"

    def judged(
        self, tolerance: float, reasons: tuple[str, ...], notes: tuple[str, ...] = ()
    ) -> ComponentReproduction:
        """This component with its verdict under ``tolerance``, and the reasons and notes."""
        verdict = self.verdict_for(tolerance=tolerance)
        return replace(
            self, verdict=verdict, reasons=reasons if verdict == "differs" else (), notes=notes
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON: every field, and whether the fingerprint and the bytes match."""
        diff = self.max_diff
        return {
            "name": self.name,
            "kind": self.kind,
            "verdict": self.verdict,
            "fingerprint_matches": self.fingerprint_matches,
            "bytes_match": self.bytes_match,
            "max_diff": diff if diff is None or math.isfinite(diff) else repr(diff),
            "rows": self.rows,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "version_id": self.version_id,
            "fingerprint": self.fingerprint,
            "rebuilt_fingerprint": self.rebuilt_fingerprint,
            "artifact": self.artifact,
            "rebuilt_artifact": self.rebuilt_artifact,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ReproduceReport:
    """A version rebuilt in a scratch workspace, component by component, in graph order.

    ``environment`` lists what differs between the environment the version's run recorded
    and this one (Python, platform, library versions); ``scratch`` is the kept scratch
    workspace (None when it was removed).
    """

    version: str
    version_id: str
    tolerance: float
    components: tuple[ComponentReproduction, ...]
    environment: tuple[str, ...] = ()
    scratch: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def __iter__(self) -> Iterator[ComponentReproduction]:
        return iter(self.components)

    def __getitem__(self, name: str) -> ComponentReproduction:
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(f"{self.version} has no component {name!r}")

    @property
    def reproduced(self) -> bool:
        """Whether every component is identical or equivalent."""
        return all(c.verdict != "differs" for c in self.components)

    @property
    def counts(self) -> dict[str, int]:
        """How many components got each verdict (every verdict named, zeros included)."""
        seen = Counter(c.verdict for c in self.components)
        return {v: seen[v] for v in VERDICTS}

    def summary(self) -> dict[str, Any]:
        """The short form kept in the audit log: verdicts, and the reasons of what differs."""
        return {
            "id": self.version_id,
            "reproduced": self.reproduced,
            "tolerance": self.tolerance,
            "counts": self.counts,
            "components": {c.name: c.verdict for c in self.components},
            "differs": {c.name: list(c.reasons) for c in self.components if c.reasons},
            "environment": list(self.environment),
        }

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON: the summary, and every component in full."""
        return {
            "version": self.version,
            **self.summary(),
            "components": [c.as_dict() for c in self.components],
            "scratch": self.scratch,
            "seconds": round(self.seconds, 3),
        }
