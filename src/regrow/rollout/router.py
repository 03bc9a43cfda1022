"""The router a server uses while a rollout is under way: request key -> lane -> version.

:class:`RolloutRouter` keeps the serving contract of :class:`regrow.serve.host.Router`
(``lane_for(request_key) -> lane``) and adds which version serves each lane
(:meth:`RolloutRouter.version_for`) and which lane, if any, is scored in the shadow of the
stable one (:attr:`RolloutRouter.shadow`). It is built from the rollout's record alone
(:func:`router_for` reads it from the catalog), so every replica routes alike:

* **split**, **blue-green**: a request's key goes to lane ``candidate`` (the candidate version)
  or ``main`` (the stable version) by :mod:`regrow.rollout.assign`, at the step's share;
* **shadow**: every request is served by ``main``; the candidate is also scored on it and its
  outputs logged under lane ``shadow``, never returned;
* a paused or inconclusive rollout keeps its share; pending, promoted and rolled back have
  none (the alias's holder serves everything: after a promotion, the candidate).

>>> router = RolloutRouter("r1", share=0.0, stable_id="s", candidate_id="c")
>>> router.lane_for("request-1"), router.version_for("main")
('main', 's')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from regrow.rollout.assign import STABLE, Lanes
from regrow.rollout.evidence import CANDIDATE, SHADOW

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.rollouts import RolloutRecord

__all__ = ["RolloutRouter", "router_for"]


class RolloutRouter:
    """Routes requests of one rollout (see the module docs)."""

    def __init__(
        self,
        rollout_id: str,
        *,
        share: float,
        stable_id: str,
        candidate_id: str,
        shadow: bool = False,
        revision: int = 0,
    ) -> None:
        self.rollout_id = rollout_id
        self.share = share
        self.stable_id = stable_id
        self.candidate_id = candidate_id
        self.revision = revision
        self._lanes = Lanes.of({CANDIDATE: share})
        #: The lane the candidate is scored under beside ``main`` (None: no shadow).
        self.shadow: str | None = SHADOW if shadow else None

    def __repr__(self) -> str:
        return f"RolloutRouter({self.rollout_id[:12]!r}, share={self.share})"

    @classmethod
    def of(cls, record: RolloutRecord) -> RolloutRouter:
        """The router of a rollout as recorded now."""
        return cls(
            record.id,
            share=record.share,
            stable_id=record.stable_id,
            candidate_id=record.candidate_id,
            shadow=record.mode == "shadow" and record.state in ("shadow", "paused", "inconclusive"),
            revision=record.revision,
        )

    def lane_for(self, request_key: str) -> str:
        """``candidate`` or ``main``: the lane that serves ``request_key``."""
        return self._lanes.lane_for(request_key, self.rollout_id)

    def version_for(self, lane: str) -> str:
        """The id of the version serving (or, for ``shadow``, scoring) ``lane``."""
        return self.candidate_id if lane in (CANDIDATE, SHADOW) else self.stable_id

    @property
    def lanes(self) -> dict[str, float]:
        """Each served lane's share of requests."""
        return {STABLE: self._lanes.share(STABLE), CANDIDATE: self.share}


def router_for(catalog: Catalog, system: str, alias: str = "champion") -> RolloutRouter | None:
    """The router of ``system@alias``'s rollout under way, or None (serve the alias alone)."""
    from regrow.catalog.rollouts import Rollouts

    record = Rollouts(catalog).active(system, alias)
    if record is None or (record.share == 0.0 and record.mode != "shadow"):
        return None
    return RolloutRouter.of(record)
