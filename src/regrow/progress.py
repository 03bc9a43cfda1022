"""Progress of long steps, and where the time went: one small contract for every service.

A service (monitoring, planning, running, evaluating) takes ``progress: ProgressFn | None``
and reports each step that can take a while as :class:`Step` events; the CLI renders them
(a Rich progress line) and the Python API may log them or ignore them. :class:`Timer` keeps
the seconds per step, so a command can end with a one-line breakdown.

>>> seen = []
>>> timer = Timer(seen.append)
>>> with timer.step("drift", total=3) as step:
...     for _ in range(3):
...         step.advance()
>>> [(s.state, s.done) for s in seen]
[('start', 0), ('advance', 1), ('advance', 2), ('advance', 3), ('done', 3)]
>>> list(timer.seconds)
['drift']
>>> timer.summary().startswith("drift ")
True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

__all__ = ["ProgressFn", "Step", "StepHandle", "Timer"]


@dataclass(frozen=True)
class Step:
    """One event of a step: it started, advanced (``done`` of ``total``), or is done."""

    name: str
    state: Literal["start", "advance", "done"]
    done: int = 0
    total: int | None = None
    seconds: float = 0.0


ProgressFn = Callable[[Step], None]


class StepHandle:
    """What a running step reports through: :meth:`advance` (never past ``total``)."""

    def __init__(self, name: str, total: int | None, emit: ProgressFn, started: float) -> None:
        self.name = name
        self.total = total
        self.done = 0
        self._emit = emit
        self._started = started

    def advance(self, by: int = 1) -> None:
        """Count ``by`` more units done; the count stops at ``total``."""
        self.done += by
        if self.total is not None:
            self.done = min(self.done, self.total)
        elapsed = time.perf_counter() - self._started
        self._emit(Step(self.name, "advance", self.done, self.total, elapsed))


class Timer:
    """Times named steps and reports them to ``progress`` (if given)."""

    def __init__(self, progress: ProgressFn | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self._emit: ProgressFn = progress or (lambda _step: None)

    @contextmanager
    def step(self, name: str, total: int | None = None) -> Iterator[StepHandle]:
        """Time the block as step ``name``; repeated names add up."""
        started = time.perf_counter()
        handle = StepHandle(name, total, self._emit, started)
        self._emit(Step(name, "start", 0, total))
        try:
            yield handle
        finally:
            elapsed = time.perf_counter() - started
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
            self._emit(Step(name, "done", handle.done, total, elapsed))

    def summary(self) -> str:
        """``"monitor 0.41 s, probes 1.20 s (total 1.61 s)"``: where the time went."""
        parts = [f"{name} {secs:.2f} s" for name, secs in self.seconds.items()]
        total = sum(self.seconds.values())
        return ", ".join(parts) + f" (total {total:.2f} s)"
