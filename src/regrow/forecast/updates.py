"""The metric to expect after a partial or a full update, from the planner's estimated gains
shrunk by how similar updates turned out.

The planner estimates each action's gain in metric units (the loss the drift cost the
members it refits, :mod:`regrow.plan`). Estimates like that tend to be optimistic, so
:func:`expected_after_update` multiplies them by a **realisation factor** learnt from the
history of similar updates, each a pair ``(expected gain, realised gain)``:

.. code-block:: text

    f = (sum(e * r) + lam) / (sum(e * e) + lam),   lam = K0 * mean(e * e)
    f = clip(f, 0, 1.5)
    expected metric = current + f * gain

``sum(e * r) / sum(e * e)`` is the least-squares slope of the realised gains on the expected
ones through the origin (how much of an expected gain is realised, weighted towards the
larger updates, and sign-safe for error metrics whose gains are negative). ``lam`` adds
:data:`PRIOR_UPDATES` pseudo-updates that went exactly as planned (``r = e``), so one lucky or
unlucky update does not swing the factor: with no history ``f = 1`` (the planner's word), and
the history takes over as it grows. The clip keeps a short history from promising more than
half as much again, or a negative gain. Pairs with a non-finite value or an expected gain of
zero carry no information about the ratio and are left out (the count says how many were
used).

>>> out = expected_after_update(0.78, 0.032, 0.048, history=[(0.04, 0.02)] * 3)
>>> out["factor"], out["history_used"], out["partial"], out["full"]
(0.625, 3, 0.8, 0.81)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from regrow.errors import ConfigError

__all__ = ["FACTOR_RANGE", "PRIOR_UPDATES", "expected_after_update"]

#: Pseudo-updates that went as planned, added to the history.
PRIOR_UPDATES = 1.0

#: The realisation factor is clipped to this range.
FACTOR_RANGE = (0.0, 1.5)


def _finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(
            f"the {name!r} parameter must be a finite number; got {value!r}",
            hint="pass the metric's value in its own units, e.g. 0.82",
        )
    return float(value)


def expected_after_update(
    current: float,
    partial_gain: float | None,
    full_gain: float | None,
    history: Sequence[tuple[float, float]] = (),
) -> dict[str, Any]:
    """The metric expected after a partial and after a full update (see the module docstring).

    ``current`` is the metric now; ``partial_gain`` and ``full_gain`` the planner's estimated
    changes of the metric for each (None: that kind of update is not on the table);
    ``history`` holds ``(expected gain, realised gain)`` of past similar updates. Returns
    ``current``, ``factor`` (the realisation factor), ``history_used``, ``partial`` and
    ``full`` (the metric expected after each, None where its gain is None), ``partial_gain``
    and ``full_gain`` (the shrunk gains) and ``formula``.
    """
    now = _finite("current", current)
    num = den = 0.0
    used = 0
    for i, pair in enumerate(history):
        try:
            e, r = (float(x) for x in pair)
        except (TypeError, ValueError):
            raise ConfigError(
                f"history entry {i} must be a pair (expected gain, realised gain); got {pair!r}",
                hint="pass e.g. [(0.03, 0.02), (0.01, 0.012)]",
            ) from None
        if not (math.isfinite(e) and math.isfinite(r)) or e == 0:
            continue
        num += e * r
        den += e * e
        used += 1
    lam = PRIOR_UPDATES * (den / used if used else 0.0)
    factor = (num + lam) / (den + lam) if used else 1.0
    factor = min(max(factor, FACTOR_RANGE[0]), FACTOR_RANGE[1])
    gains = {
        "partial_gain": None if partial_gain is None else _finite("partial_gain", partial_gain),
        "full_gain": None if full_gain is None else _finite("full_gain", full_gain),
    }
    shrunk = {k: None if g is None else round(factor * g, 12) for k, g in gains.items()}
    return {
        "current": now,
        "factor": round(factor, 12),
        "history_used": used,
        "partial": None
        if shrunk["partial_gain"] is None
        else round(now + shrunk["partial_gain"], 12),
        "full": None if shrunk["full_gain"] is None else round(now + shrunk["full_gain"], 12),
        **shrunk,
        "formula": "current + f * gain, f = clip((sum(e*r) + lam) / (sum(e*e) + lam), 0, 1.5), "
        f"lam = {PRIOR_UPDATES:g} * mean(e*e) over {used} past update(s)",
    }
