"""Serving through a rollout: the routing a slot publishes, and a request's way through it.

While a rollout of a followed alias is under way (:mod:`regrow.rollout`), its slot holds a
:class:`Routing`: the rollout's :class:`~regrow.rollout.router.RolloutRouter` and a loaded
:class:`~regrow.serve.served.Served` for each version the router names (the stable one
first). The poller builds it off the request path and publishes it in one assignment
(:mod:`.follow`); a request reads it once. Without a rollout the slot holds none and requests
take the one-lane path, as before.

A request's **routing key** is its ``parameters`` ``"routing_key"`` (OIP request
parameters), else its ``x-regrow-routing-key`` header, else its id: a client that sends a
user's id as the key keeps that user on one lane. :func:`route` sends the request's rows
down the lane its key falls in:

======================  =======================================================================
mode                    served, and logged
======================  =======================================================================
split, ab, blue-green   the lane's version (``main``: the stable one), logged under that lane
shadow                  the stable version (lane ``main``); the candidate also scores the rows,
                        logged under ``shadow``, and the response does not wait for it
blend                   ``(1 - w) * stable + w * candidate`` (:func:`blend`), lane ``blend``;
                        the stable's rows logged under ``main``, the candidate's under
                        ``shadow``
======================  =======================================================================

>>> routing_key({"routing_key": "user-7"}, {}, "request-1")
'user-7'
>>> routing_key({}, {"x-regrow-routing-key": "user-8"}, "request-1")
'user-8'
>>> routing_key({}, {}, "request-1")
'request-1'
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from regrow.rollout.assign import STABLE
from regrow.rollout.evidence import SHADOW
from regrow.rollout.router import BLEND, RolloutRouter
from regrow.serve.errors import BadRequest
from regrow.serve.oip import Decoded
from regrow.serve.served import Served, Ticket

__all__ = ["ROUTING_HEADER", "ROUTING_PARAMETER", "Routed", "Routing", "blend", "route"]

log = logging.getLogger("regrow.serve")

#: The request parameter that carries a routing key.
ROUTING_PARAMETER = "routing_key"
#: The header that carries a routing key when the parameters do not.
ROUTING_HEADER = "x-regrow-routing-key"

Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class Routing:
    """A rollout's router and the loaded version of each version id it names."""

    router: RolloutRouter
    served: Mapping[str, Served]

    def __repr__(self) -> str:
        return f"Routing({self.router!r}, versions={[s.ref for s in self.served.values()]})"

    @property
    def stable(self) -> Served:
        """The stable version (lane ``main``)."""
        return self.served[self.router.stable_id]

    def of(self, lane: str) -> Served:
        """The version serving (or, for ``shadow``, scoring) ``lane``."""
        return self.served[self.router.version_for(lane)]

    @property
    def weights(self) -> dict[str, float]:
        """Each served lane's weight, for ``regrow_rollout_weight``: its share of requests,
        or in blend mode the candidate's weight in the blend (lane ``blend``)."""
        if self.router.blend is not None:
            return {BLEND: self.router.blend}
        return self.router.lanes

    def same(self, router: RolloutRouter) -> bool:
        """Whether ``router`` routes as this routing's router does."""
        mine = self.router
        return (
            mine.rollout_id == router.rollout_id
            and mine.versions == router.versions
            and mine.lanes == router.lanes
            and mine.shadow == router.shadow
            and mine.blend == router.blend
        )


@dataclass(frozen=True)
class Routed:
    """Where a request went: its lane, the version reference the response names, the
    outputs to wait for, and extra response parameters."""

    lane: str
    version: str
    outputs: Awaitable[Outputs]
    parameters: Mapping[str, Any]


def routing_key(parameters: Mapping[str, Any], headers: Mapping[str, str], request_id: str) -> str:
    """A request's routing key (see the module docs); a key that is not a string or an
    integer is a :class:`~regrow.serve.errors.BadRequest`."""
    key = parameters.get(ROUTING_PARAMETER)
    if key is None:
        return headers.get(ROUTING_HEADER) or request_id
    if isinstance(key, bool) or not isinstance(key, str | int) or key == "":
        raise BadRequest(
            f"the request parameter {ROUTING_PARAMETER!r} must be a non-empty string or an "
            f"integer (got {key!r})",
            hint="send the id of the user the request is for, e.g. "
            '"parameters": {"routing_key": "user-42"}',
        )
    return str(key)


def route(routing: Routing, decoded: Decoded, key: str) -> Routed:
    """Queue ``decoded``'s rows on the lane ``key`` falls in (see the module docs): call it
    while the request is announced, await :attr:`Routed.outputs` after."""
    router = routing.router
    columns, rows, rid = decoded.columns, decoded.rows, decoded.id
    if router.blend is not None:
        stable, candidate = routing.stable, routing.of(BLEND)
        mine = stable.batcher.enqueue(columns, rows, Ticket(rid, rows, STABLE))
        theirs = candidate.batcher.enqueue(columns, rows, Ticket(rid, rows, SHADOW))
        weight = router.blend
        mixed = _blended(mine, theirs, weight, stable.signature.classes)
        extra = {"blend_weight": weight}
        return Routed(BLEND, candidate.ref, mixed, extra)
    lane = router.lane_for(key)
    served = routing.of(lane)
    outputs = served.batcher.enqueue(columns, rows, Ticket(rid, rows, lane))
    if router.shadow is not None:
        shadow = routing.of(SHADOW)
        scored = shadow.batcher.enqueue(columns, rows, Ticket(rid, rows, SHADOW))
        scored.add_done_callback(_shadow_done(shadow.ref, rid))
    return Routed(lane, served.ref, outputs, {})


async def _blended(
    stable: asyncio.Future[Outputs],
    candidate: asyncio.Future[Outputs],
    weight: float,
    classes: tuple[Any, ...] | None,
) -> Outputs:
    mine, theirs = await asyncio.gather(stable, candidate, return_exceptions=True)
    if isinstance(mine, BaseException):  # both errors retrieved; the stable's is told
        raise mine
    if isinstance(theirs, BaseException):
        raise theirs
    return blend(mine, theirs, weight, classes)


def blend(
    stable: Outputs, candidate: Outputs, weight: float, classes: tuple[Any, ...] | None
) -> Outputs:
    """``(1 - weight) * stable + weight * candidate``: class probabilities (the prediction is
    the class of the highest), or a regressor's values.

    >>> out = blend({"predict": np.array([0]), "probabilities": np.array([[0.8, 0.2]])},
    ...             {"predict": np.array([1]), "probabilities": np.array([[0.2, 0.8]])},
    ...             0.75, (0, 1))
    >>> out["predict"].tolist(), out["probabilities"].round(2).tolist()
    ([1], [[0.35, 0.65]])
    >>> blend({"predict": np.array([1.0])}, {"predict": np.array([3.0])}, 0.25, None)
    {'predict': array([1.5])}
    """
    if classes is None:
        return {"predict": (1.0 - weight) * stable["predict"] + weight * candidate["predict"]}
    proba = (1.0 - weight) * stable["probabilities"] + weight * candidate["probabilities"]
    labels = np.asarray(classes, dtype=object if len({type(c) for c in classes}) > 1 else None)
    return {"predict": labels[proba.argmax(axis=1)], "probabilities": proba}


def _shadow_done(ref: str, request_id: str) -> Any:
    def done(future: asyncio.Future[Outputs]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            log.warning("shadow scoring of request %s by %s failed: %s", request_id, ref, error)

    return done
