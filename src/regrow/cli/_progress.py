"""The progress line on standard error, and the one-line time breakdown.

:func:`progress_line` yields a callback that renders both kinds of progress events regrow
emits: a service's :class:`~regrow.progress.Step` (``drift`` 3/12, ``probes``...) and a run's
:class:`~regrow.run.runner.RunEvent` (``training geo`` 2/3). The line is transient: it is
gone once the command prints its result, and it is not drawn at all when standard error is
not a terminal. The counter never passes its total, and a new run (``planned``) starts it
again from zero.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from regrow.cli._app import err

__all__ = [
    "ProgressFn",
    "ProgressLine",
    "accepts_progress",
    "print_timings",
    "progress_line",
    "with_progress",
]

#: What the commands pass as ``progress=``: takes a Step or a RunEvent.
ProgressFn = Callable[[Any], None]
T = TypeVar("T")


class ProgressLine:
    """Renders :class:`~regrow.progress.Step` and run events as one Rich progress line."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._steps: dict[str, TaskID] = {}
        self._run: TaskID | None = None
        self._run_total = 0
        self._run_done = 0

    def __call__(self, event: Any) -> None:
        if hasattr(event, "state"):  # a Step
            self._step(event.name, event.state, event.done, event.total)
        else:  # a RunEvent
            self._run_event(event)

    def _step(self, name: str, state: str, done: int, total: int | None) -> None:
        task = self._steps.get(name)
        if state == "start" or task is None:
            if task is not None:
                self._bar.remove_task(task)
            task = self._steps[name] = self._bar.add_task(name, total=total)
        if state == "done":
            self._bar.remove_task(self._steps.pop(name))
            return
        shown = done if total is None else min(done, total)
        self._bar.update(task, completed=shown, total=total)

    def _run_event(self, event: Any) -> None:
        kind = event.kind
        if kind == "planned" or self._run is None:
            # Each run (the demo makes two) counts its own components from zero.
            if self._run is not None:
                self._bar.remove_task(self._run)
            self._run_total = int(event.total or 0) if kind == "planned" else 0
            self._run_done = 0
            self._run = self._bar.add_task("training", total=self._run_total)
        if kind == "started" and event.component:
            self._bar.update(self._run, description=f"training {event.component}")
        elif kind in ("finished", "reused"):
            # ``done``: how many of the planned components are settled (fitted, or reused
            # after another run fitted them); never past the total.
            self._run_done = max(self._run_done, int(getattr(event, "done", 0) or 0))
            self._bar.update(self._run, completed=min(self._run_done, self._run_total))


@contextmanager
def progress_line(enabled: bool) -> Iterator[ProgressFn | None]:
    """A progress callback drawing on standard error, or None when not ``enabled`` or when
    standard error is not a terminal (a log file gets the result, not the animation)."""
    if not enabled or not err.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}", markup=False, style="bold"),
        BarColumn(),
        _Count(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        yield ProgressLine(bar)


class _Count(ProgressColumn):
    """``done/total``, or nothing while the total is unknown."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        return Text(f"{int(task.completed)}/{int(task.total)}", style="progress.download")


def accepts_progress(method: Callable[..., Any]) -> bool:
    """Whether a Workspace method takes a ``progress`` callback."""
    try:
        return "progress" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def print_timings(*results: Any) -> None:
    """``time: monitor 0.41 s, probes 1.20 s (total 1.61 s)`` on standard error, if any of
    ``results`` carries a time breakdown (a ``timings`` or ``timer`` attribute: a
    :class:`~regrow.progress.Timer`, or a mapping of step names to seconds)."""
    for result in results:
        for attr in ("timings", "timer"):
            value = getattr(result, attr, None)
            line = _summary(value)
            if line:
                err.print(f"time: {line}")
                return


def _summary(value: Any) -> str:
    """A Timer's summary, or a mapping's in the same shape; "" when nothing was timed."""
    seconds = getattr(value, "seconds", value)
    if value is None or (isinstance(seconds, Mapping) and not seconds):
        return ""
    summary = getattr(value, "summary", None)
    if callable(summary):
        return str(summary())
    if isinstance(seconds, Mapping):
        parts = [f"{name} {float(secs):.2f} s" for name, secs in seconds.items()]
        return ", ".join(parts) + f" (total {sum(float(s) for s in seconds.values()):.2f} s)"
    return ""


def with_progress(method: Callable[..., T], progress: ProgressFn | None) -> Callable[..., T]:
    """``method`` with ``progress=`` bound when it takes one (and a callback is given)."""
    if progress is None or not accepts_progress(method):
        return method
    return functools.partial(method, progress=progress)
