"""Online change detection on per-request error or score streams (serving side).

:class:`StreamMonitor` wraps River's ADWIN (``river.drift.ADWIN``, an optional dependency:
``pip install 'regrow[monitor]'``). ADWIN keeps a window of recent values and drops its older
part whenever the means of the two parts differ by more than a Hoeffding-style bound set by
``delta``; each drop is an alarm. The defaults (``delta=0.002``, River's own) were checked not
to fire on 20 stable streams of 10,000 Bernoulli(0.1) errors, and to fire within a few hundred
requests of a step from a 0.1 to a 0.3 error rate.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> errors = np.r_[rng.uniform(size=3000) < 0.1, rng.uniform(size=3000) < 0.3]
>>> monitor = StreamMonitor()
>>> alarms = monitor.update_many(errors)
>>> bool(alarms.size > 0 and 3000 <= alarms[0] < 3600)
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from regrow.errors import ConfigError, MissingDependency

__all__ = ["StreamMonitor"]


def _adwin(delta: float, grace: int, clock: int) -> Any:
    try:
        from river import drift
    except ImportError as exc:
        raise MissingDependency("river", "monitor") from exc
    adwin: Any = drift.ADWIN  # River's constructors carry no annotations
    return adwin(delta=delta, clock=clock, grace_period=grace)


class StreamMonitor:
    """ADWIN over a stream of numbers (0/1 errors, losses or scores).

    Parameters are stored as given:

    - ``delta``: confidence of each cut; smaller means fewer, later alarms (0 < delta < 1).
    - ``grace``: values seen before the first check is allowed.
    - ``clock``: how often (in values) ADWIN checks for a change; 1 checks on every value.

    After ``update`` returns True, ``estimate`` is the mean of the values since the change.
    """

    def __init__(self, delta: float = 0.002, grace: int = 30, clock: int = 32) -> None:
        if not isinstance(delta, float | int) or isinstance(delta, bool) or not 0 < delta < 1:
            raise ConfigError(
                f"the 'delta' parameter of StreamMonitor must be a float in (0, 1); got {delta!r}"
            )
        for name, value in (("grace", grace), ("clock", clock)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(
                    f"the {name!r} parameter of StreamMonitor must be an int >= 1; got {value!r}"
                )
        self.delta = delta
        self.grace = grace
        self.clock = clock
        self._detector = _adwin(float(delta), grace, clock)
        self._n = 0
        self._alarms: list[int] = []

    def __repr__(self) -> str:
        return f"StreamMonitor(delta={self.delta!r}, grace={self.grace!r}, clock={self.clock!r})"

    @property
    def n_seen(self) -> int:
        """How many values the monitor has read."""
        return self._n

    @property
    def alarms(self) -> list[int]:
        """The 0-based positions in the stream at which a change was detected."""
        return list(self._alarms)

    @property
    def estimate(self) -> float:
        """The mean of the values in ADWIN's current window."""
        return float(self._detector.estimation)

    @property
    def width(self) -> int:
        """How many recent values ADWIN's window holds."""
        return int(self._detector.width)

    def update(self, value: float) -> bool:
        """Read one value; True when it completes the evidence of a change."""
        v = float(value)
        if not np.isfinite(v):
            raise ConfigError(
                f"StreamMonitor.update takes finite numbers (got {value!r})",
                hint="drop or impute missing errors and scores before monitoring them",
            )
        self._detector.update(v)
        fired = bool(self._detector.drift_detected)
        if fired:
            self._alarms.append(self._n)
        self._n += 1
        return fired

    def update_many(self, values: Iterable[float]) -> np.ndarray:
        """Read values in order; the stream positions (global, 0-based) of the alarms raised."""
        arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, float)
        if arr.ndim != 1:
            raise ConfigError(f"update_many takes a 1-d sequence (got shape {arr.shape})")
        if not np.isfinite(arr).all():
            raise ConfigError(
                "StreamMonitor.update_many takes finite numbers "
                f"(got {int((~np.isfinite(arr)).sum())} NaN or infinite values)",
                hint="drop or impute missing errors and scores before monitoring them",
            )
        start = len(self._alarms)
        detector = self._detector
        # ADWIN is sequential by nature: one call per value, in River's compiled code.
        for i, v in enumerate(arr.tolist()):
            detector.update(v)
            if detector.drift_detected:
                self._alarms.append(self._n + i)
        self._n += arr.size
        return np.asarray(self._alarms[start:], dtype=np.int64)

    def reset(self) -> None:
        """Forget everything read so far."""
        self._detector = _adwin(float(self.delta), self.grace, self.clock)
        self._n = 0
        self._alarms = []
