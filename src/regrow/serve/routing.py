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

A candidate that cannot score a request never fails it in blend mode: the stable version's
outputs answer it alone (lane ``main``, its version), with a warning. In split and ab modes a
candidate lane's error goes to the client (it is what the canary measures). Either way, and
for shadow scoring, the caller's ``failed`` callback is told (the server counts
``regrow_rollout_candidate_errors_total{model,lane}``).

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
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from regrow.rollout.assign import STABLE
from regrow.rollout.evidence import SHADOW
from regrow.rollout.router import BLEND, RolloutRouter
from regrow.serve.errors import BadRequest
from regrow.serve.oip import Decoded
from regrow.serve.served import Served, Ticket

__all__ = [
    "QUIET_SECONDS",
    "ROUTING_HEADER",
    "ROUTING_PARAMETER",
    "Answer",
    "CandidateFailed",
    "Routing",
    "blend",
    "route",
    "routing_key",
]

log = logging.getLogger("regrow.serve")

#: The request parameter that carries a routing key.
ROUTING_PARAMETER = "routing_key"
#: The header that carries a routing key when the parameters do not.
ROUTING_HEADER = "x-regrow-routing-key"

Outputs = dict[str, np.ndarray]

#: Seconds between two warnings about one candidate's failures to score.
QUIET_SECONDS = 10.0
_warned_at: dict[str, float] = {}


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
class Answer:
    """What a routed request is answered with: its lane, the version reference the response
    names, the outputs, and extra response parameters."""

    lane: str
    version: str
    outputs: Outputs
    parameters: Mapping[str, Any]


#: Told when a candidate fails to score a request: the lane it scored for, and the error.
CandidateFailed = Callable[[str, BaseException], None]


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
            '"parameters": {"routing_key": "user-42"}; an integer beyond 64 bits arrives as a '
            "float: send it as a string",
        )
    return str(key)


def route(
    routing: Routing, decoded: Decoded, key: str, failed: CandidateFailed | None = None
) -> Awaitable[Answer]:
    """Queue ``decoded``'s rows on the lane ``key`` falls in (see the module docs): call it
    while the request is announced, await the :class:`Answer` after. ``failed`` is told of
    each candidate's failure (a blend's, a candidate lane's, a shadow's)."""
    router = routing.router
    columns, rows, rid = decoded.columns, decoded.rows, decoded.id
    told = failed or _ignore
    by = router.rollout_id
    if router.blend is not None:
        stable, candidate = routing.stable, routing.of(BLEND)
        mine = stable.batcher.enqueue(columns, rows, Ticket(rid, rows, STABLE, by))
        theirs = candidate.batcher.enqueue(columns, rows, Ticket(rid, rows, SHADOW, by))
        return _blended(mine, theirs, router.blend, (stable, candidate), rid, told)
    lane = router.lane_for(key)
    served = routing.of(lane)
    outputs = served.batcher.enqueue(columns, rows, Ticket(rid, rows, lane, by))
    if router.shadow is not None:
        shadow = routing.of(SHADOW)
        scored = shadow.batcher.enqueue(columns, rows, Ticket(rid, rows, SHADOW, by))
        scored.add_done_callback(_shadow_done(shadow.ref, rid, told))
    return _laned(outputs, lane, served.ref, told)


def _ignore(lane: str, error: BaseException) -> None:
    return None


async def _laned(
    outputs: asyncio.Future[Outputs], lane: str, ref: str, failed: CandidateFailed
) -> Answer:
    """The answer of one lane; a candidate lane's error is told, and goes to the client."""
    try:
        done = await outputs
    except Exception as exc:
        if lane != STABLE:
            failed(lane, exc)
        raise
    return Answer(lane, ref, done, {})


async def _blended(
    stable: asyncio.Future[Outputs],
    candidate: asyncio.Future[Outputs],
    weight: float,
    versions: tuple[Served, Served],
    request_id: str,
    failed: CandidateFailed,
) -> Answer:
    """The blend of the two outputs; the stable version's alone (lane ``main``) when the
    candidate could not score the request."""
    mine, theirs = await asyncio.gather(stable, candidate, return_exceptions=True)
    if isinstance(theirs, BaseException):
        failed(BLEND, theirs)
    if isinstance(mine, BaseException):  # both errors retrieved; the stable's is told
        raise mine
    old, new = versions
    if isinstance(theirs, BaseException):
        _warn_once_in_a_while(
            new.ref, "blend: %s could not score request %s (%s); answered by %s alone "
            "(each such request counts in regrow_rollout_candidate_errors_total; this "
            "warning comes at most every %gs)", new.ref, request_id, theirs, old.ref, QUIET_SECONDS,
        )  # fmt: skip
        return Answer(STABLE, old.ref, mine, {})
    mixed = blend(mine, theirs, weight, old.signature.classes)
    return Answer(BLEND, new.ref, mixed, {"blend_weight": weight})


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


def _warn_once_in_a_while(ref: str, message: str, *args: Any) -> None:
    """Log a warning about version ``ref``, unless one about it came in the last
    :data:`QUIET_SECONDS` (a failing candidate would fill the log, request by request)."""
    now = time.monotonic()
    if now - _warned_at.get(ref, -QUIET_SECONDS) >= QUIET_SECONDS:
        _warned_at[ref] = now
        log.warning(message, *args)


def _shadow_done(ref: str, request_id: str, failed: CandidateFailed) -> Any:
    def done(future: asyncio.Future[Outputs]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            failed(SHADOW, error)
            _warn_once_in_a_while(
                ref, "shadow scoring of request %s by %s failed: %s (counted in "
                "regrow_rollout_candidate_errors_total; this warning comes at most every %gs)",
                request_id, ref, error, QUIET_SECONDS,
            )  # fmt: skip

    return done
