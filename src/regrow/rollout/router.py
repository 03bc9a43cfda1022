"""The router a server uses while a rollout is under way: request key -> lane -> version.

:class:`RolloutRouter` keeps the serving contract of :class:`regrow.serve.host.Router`
(``lane_for(request_key) -> lane``) and adds which version serves each lane
(:meth:`RolloutRouter.version_for`), which lane, if any, is scored in the shadow of the
stable one (:attr:`RolloutRouter.shadow`) and, in blend mode, the weight of the candidate in
the served blend (:attr:`RolloutRouter.blend`). It is built from the rollout's record alone
(:func:`router_for` reads it from the catalog), so every replica routes alike:

* **split**, **blue-green**: a request's key goes to lane ``candidate`` (the candidate version)
  or ``main`` (the stable version) by :mod:`regrow.rollout.assign`, at the step's share;
* **ab**: as split, with one lane per candidate (``candidate``, ``candidate-2``, ...), each at
  its share; a lane the analysis dropped gets no more requests;
* **shadow**: every request is served by ``main``; the candidate is also scored on it and its
  outputs logged under lane ``shadow``, never returned;
* **blend**: every request is served by lane ``blend``: ``(1 - w) * stable + w * candidate``
  (class probabilities, or values), ``w`` the step's share. For a mean ensemble whose
  candidate adds a member, that is the new member's weight ramping up. Both versions'
  outputs are logged (``main`` and ``shadow``) and compared per request, as in shadow mode;
* a paused or inconclusive rollout keeps its shares; pending, promoted and rolled back have
  none (the alias's holder serves everything: after a promotion, the candidate).

>>> router = RolloutRouter("r1", stable_id="s", lanes={"candidate": ("c", 0.0)})
>>> router.lane_for("request-1"), router.version_for("main"), router.versions
('main', 's', ('s', 'c'))
>>> blend = RolloutRouter("r2", stable_id="s", mode="blend", blend=("c", 0.25))
>>> blend.lane_for("anything"), blend.version_for(SHADOW), blend.blend
('blend', 'c', 0.25)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from regrow.rollout.assign import STABLE, Lanes
from regrow.rollout.evidence import CANDIDATE, SHADOW

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.rollouts import RolloutRecord

__all__ = ["BLEND", "RolloutRouter", "router_for"]

#: The lane serving the blend of a blend rollout (every request).
BLEND = "blend"


class RolloutRouter:
    """Routes requests of one rollout (see the module docs).

    ``lanes`` maps each candidate lane to ``(version id, share)`` (split, ab, blue-green; in
    a fixed order, which fixes where each lane's interval starts); ``shadow`` is the version
    scored beside ``main`` on every request (shadow mode); ``blend`` is ``(version id,
    weight)`` of a blend rollout's candidate.
    """

    def __init__(
        self,
        rollout_id: str,
        *,
        stable_id: str,
        lanes: Mapping[str, tuple[str, float]] | None = None,
        shadow: str | None = None,
        blend: tuple[str, float] | None = None,
        mode: str = "split",
        revision: int = 0,
    ) -> None:
        self.rollout_id = rollout_id
        self.stable_id = stable_id
        self.mode = mode
        self.revision = revision
        self._versions = {lane: vid for lane, (vid, _) in (lanes or {}).items()}
        self._lanes = Lanes.of({lane: share for lane, (_, share) in (lanes or {}).items()})
        #: The lane the candidate is scored under beside ``main`` (shadow and blend), or None.
        self.shadow: str | None = None
        #: Blend mode: the candidate's weight in the served blend; else None.
        self.blend: float | None = None
        if shadow is not None:
            self.shadow, self._versions[SHADOW] = SHADOW, shadow
        if blend is not None:
            self.shadow, self._versions[SHADOW] = SHADOW, blend[0]
            self._versions[BLEND] = blend[0]
            self.blend = float(blend[1])

    def __repr__(self) -> str:
        return f"RolloutRouter({self.rollout_id[:12]!r}, mode={self.mode!r}, lanes={self.lanes})"

    @classmethod
    def of(cls, record: RolloutRecord) -> RolloutRouter:
        """The router of a rollout as recorded now."""
        mode, share = record.mode, record.share
        holding = record.state in ("shadow", "progressing", "paused", "inconclusive")
        if mode == "shadow":
            return cls(
                record.id, stable_id=record.stable_id, mode=mode, revision=record.revision,
                shadow=record.candidate_id if holding else None,
            )  # fmt: skip
        if mode == "blend":
            return cls(
                record.id, stable_id=record.stable_id, mode=mode, revision=record.revision,
                blend=(record.candidate_id, share) if holding else None,
            )  # fmt: skip
        lanes = {lane: (vid, s) for lane, vid, s in _lanes(record)}
        return cls(
            record.id, stable_id=record.stable_id, lanes=lanes, mode=mode,
            revision=record.revision,
        )  # fmt: skip

    def lane_for(self, request_key: str) -> str:
        """The lane that serves ``request_key``: ``main``, a candidate lane, or ``blend``."""
        if self.blend is not None:
            return BLEND
        return self._lanes.lane_for(request_key, self.rollout_id)

    def version_for(self, lane: str) -> str:
        """The id of the version serving (or, for ``shadow``, scoring) ``lane``; for
        ``blend``, the candidate blended with the stable version."""
        return self._versions.get(lane, self.stable_id)

    @property
    def share(self) -> float:
        """The candidates' total share of requests (blend: the candidate's weight)."""
        if self.blend is not None:
            return self.blend
        return 1.0 - self._lanes.share(STABLE)

    @property
    def lanes(self) -> dict[str, float]:
        """Each served lane's share of requests (blend: ``{"blend": 1.0}``)."""
        if self.blend is not None:
            return {BLEND: 1.0}
        return {STABLE: self._lanes.share(STABLE), **dict(self._lanes.shares)}

    @property
    def versions(self) -> tuple[str, ...]:
        """Every version a server must hold for this rollout, the stable one first."""
        return tuple(dict.fromkeys([self.stable_id, *self._versions.values()]))


def _lanes(record: RolloutRecord) -> list[tuple[str, str, float]]:
    """``(lane, version id, share)`` of each candidate lane of a split, ab or blue-green
    rollout. A record with ``lanes`` (ab) lists them; else one lane, ``candidate``."""
    if record.lanes:
        return [(lane.name, lane.version_id, lane.share) for lane in record.lanes]
    return [(CANDIDATE, record.candidate_id, record.share)]


def router_for(catalog: Catalog, system: str, alias: str = "champion") -> RolloutRouter | None:
    """The router of ``system@alias``'s rollout under way, or None (serve the alias alone)."""
    from regrow.catalog.rollouts import Rollouts

    record = Rollouts(catalog).active(system, alias)
    if record is None:
        return None
    router = RolloutRouter.of(record)
    if router.shadow is None and router.blend is None and router.share == 0.0:
        return None
    return router
