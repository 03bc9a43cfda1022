"""Lane assignment: which lane serves a request, from a hash of the rollout and the request key.

Every replica assigns a request the same way with no shared state: the request key (its id,
or a user or session key when the caller sends one) and the rollout's id hash to a point in
``[0, 1)`` (:func:`point`: the first 8 bytes of a SHA-256 digest over 2**64, so the points are
uniform to within 2**-64). Candidate lane ``k`` of ``K`` owns the interval
``[k/K, k/K + share_k)`` (so a candidate's share is at most ``1/K``), and the stable lane the
rest. Hence:

* **sticky**: the same key in the same rollout always lands in the same lane;
* **monotone**: growing a candidate's share only moves requests *into* it (its interval grows
  to the right from a fixed start; other candidates' intervals do not move);
* **exact in expectation**: a lane's expected share is its interval's length; over ``n`` keys its
  count is Binomial(``n``, share);
* **independent across rollouts**: the rollout id salts the hash, so a new rollout does not
  send the same users to the candidate again.

>>> lanes = Lanes.of({"candidate": 0.25})
>>> lanes.lane_for("r1", "rollout-1") == lanes.lane_for("r1", "rollout-1")
True
>>> lanes.interval("candidate"), lanes.interval("main")
((0.0, 0.25), None)
>>> round(point("rollout-1", "request-42"), 6)
0.372284
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from regrow.errors import ConfigError

__all__ = ["STABLE", "Lanes", "point"]

#: The stable lane's name: what serves the requests no candidate takes (the server's one lane).
STABLE = "main"
_SCALE = float(2**64)


def point(rollout_id: str, request_key: str) -> float:
    """Where ``request_key`` falls in ``[0, 1)`` for rollout ``rollout_id``."""
    digest = hashlib.sha256(f"{rollout_id}\x00{request_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


@dataclass(frozen=True)
class Lanes:
    """The candidate lanes of a rollout with their shares, in a fixed order; the stable lane
    (:data:`STABLE`) takes what they leave."""

    shares: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, shares: Mapping[str, float]) -> Lanes:
        """Lanes from ``{lane: share}`` in the mapping's order (keep the order across steps:
        it fixes where each lane's interval starts). Each share must be in ``[0, 1/K]``."""
        k = len(shares)
        for lane, share in shares.items():
            if not lane or lane == STABLE:
                raise ConfigError(
                    f"candidate lane {lane!r} is not a lane name",
                    hint=f"name candidate lanes anything but {STABLE!r} (the stable lane)",
                )
            if not isinstance(share, int | float) or not 0.0 <= share <= 1.0 / k + 1e-12:
                raise ConfigError(
                    f"lane {lane!r} has share {share!r}",
                    hint=f"with {k} candidate lane(s) each share must be in [0, {1 / k:g}]",
                )
        return cls(tuple((lane, min(float(s), 1.0 / k)) for lane, s in shares.items()))

    def interval(self, lane: str) -> tuple[float, float] | None:
        """The ``[start, end)`` a candidate lane owns (None for the stable lane)."""
        k = len(self.shares)
        for i, (name, share) in enumerate(self.shares):
            if name == lane:
                return (i / k, i / k + share)
        if lane == STABLE:
            return None
        raise ConfigError(
            f"unknown lane {lane!r}",
            hint=f"the lanes are {', '.join([STABLE, *(n for n, _ in self.shares)])}",
        )

    def lane_at(self, x: float) -> str:
        """The lane owning the point ``x`` of ``[0, 1)``."""
        k = len(self.shares)
        if k:
            i = min(int(x * k), k - 1)
            name, share = self.shares[i]
            if x < i / k + share:
                return name
        return STABLE

    def lane_for(self, request_key: str, rollout_id: str) -> str:
        """The lane of ``request_key`` in rollout ``rollout_id``."""
        return self.lane_at(point(rollout_id, request_key))

    def share(self, lane: str) -> float:
        """The expected share of requests ``lane`` gets."""
        if lane == STABLE:
            return 1.0 - sum(s for _, s in self.shares)
        return dict(self.shares).get(lane, 0.0)
