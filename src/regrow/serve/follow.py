"""What a server's poller does for rollouts: route each followed alias through its rollout,
and step the rollouts on a timer.

**Routing.** Each poll, for every slot that follows an alias, :meth:`RolloutFollower.route`
reads the rollout under way (:func:`regrow.rollout.router.router_for`). When its routing
changed, the follower gathers a :class:`~regrow.serve.served.Served` for every version the
router names (those already in memory: the slot's current and previous versions and the
routing's own; any other is loaded and checked as a hot swap checks a version: the same
signature as the current one, right outputs on its golden set) and publishes a new
:class:`~regrow.serve.routing.Routing` in one assignment. A candidate refused or failing to
load is audited as a refused swap (``serve.swap_refused`` / ``serve.swap_failed``, naming the
rollout) and aborts the rollout (:func:`regrow.rollout.machine.abort`, action
``serve_refused`` / ``serve_failed``); the stable version keeps serving everything. A rollout
that ends (promoted, rolled back) drops the routing; the hot swap that follows the alias
takes the version it moves to from the routing, without loading it again.

**Stepping.** Every ``step_seconds`` (``[serve] rollout_step_seconds``; 0: never),
:meth:`RolloutFollower.step` analyses each rollout of a followed alias once
(:func:`regrow.rollout.machine.step`, with the record it read: a replica that stepped it first
makes it ``raced``, harmlessly), passing the period as ``min_interval`` so that replicas do
not write a ``hold`` each (action ``skip``). Actions other than ``hold`` and ``skip`` are
logged at INFO, those an operator must see (:data:`WARNED_ACTIONS`: a failed candidate, a
pause on an analysis that failed or a refused promotion, a rollout superseded by a move by
hand) as warnings. A server whose identity may not step rollouts (it needs the operator role)
says so once, as a warning. Each rollout is stepped on its own: one that cannot be analysed (a
slice the log cannot evaluate, a label that is not a number) is logged as one warning naming
its alias and the error, again only when the error changes, and the other rollouts go on; an
error that is not a :class:`~regrow.errors.RegrowError` is logged with its traceback, once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from regrow.errors import AliasConflict, PermissionDenied, RegrowError
from regrow.rollout.router import RolloutRouter, router_for
from regrow.serve.routing import Routing

if TYPE_CHECKING:
    from regrow.catalog.rollouts import RolloutRecord
    from regrow.rollout.machine import Governed, StepResult
    from regrow.serve.host import ModelHost, Slot
    from regrow.serve.served import Served

__all__ = ["QUIET_ACTIONS", "WARNED_ACTIONS", "RolloutFollower"]

log = logging.getLogger("regrow.serve")

#: Step actions not worth a log line (nothing moved).
QUIET_ACTIONS = frozenset({"hold", "idle", "skip"})
#: Step actions an operator should see at the default log level (the others are INFO).
WARNED_ACTIONS = frozenset({"fail", "analysis_failed", "promotion-refused", "superseded"})
_FIX = (
    "give the server's identity the operator role (regrow users role NAME operator), or "
    "set [serve] rollout_step_seconds = 0 and step rollouts with regrow rollout step"
)


class RolloutFollower:
    """Routes ``host``'s followed slots through their rollouts, and steps the rollouts (see
    the module docs). ``workspace`` is what aborts and steps them (None: neither)."""

    def __init__(
        self, host: ModelHost, workspace: Governed | None = None, step_seconds: float = 0.0
    ) -> None:
        self.host = host
        self.workspace = workspace
        self.step_seconds = step_seconds
        #: Rollouts whose candidate this server refused: not routed again.
        self.refused: set[str] = set()
        self._denied = False
        #: The error each alias's rollout last failed to step with (logged once until it changes).
        self._said: dict[str, str] = {}

    # -- routing ----------------------------------------------------------------------------

    def route(self, slot: Slot) -> str | None:
        """Publish ``slot``'s routing for the rollout of its alias, if it changed; what
        happened, in words (None: nothing)."""
        t = slot.target
        if t.alias is None or slot.current is None:
            return None
        router = router_for(self.host.catalog, t.system, t.alias)
        old = slot.routing
        if router is None or router.rollout_id in self.refused:
            if old is None:
                return None
            slot.routing = None
            self._weights(slot, None)
            event = f"{t.label}: rollout {old.router.rollout_id[:12]} over, all to main"
            log.info(event)
            return event
        if old is not None and old.same(router):
            return None
        served: dict[str, Served] = {}
        for vid in router.versions:
            held = self._held(slot, vid)
            if held is None:
                held, refusal = self._load(slot, router, vid)
                if held is None:
                    slot.routing = None
                    self._weights(slot, None)
                    return refusal
            served[vid] = held
        slot.routing = routing = Routing(router, served)  # requests read it once
        self.host.forget_unused()
        self._weights(slot, routing)
        lanes = ", ".join(f"{lane} {w:g}" for lane, w in routing.weights.items())
        shadow = f", shadow {routing.of(router.shadow).ref}" if router.shadow else ""
        event = f"{t.label}: rollout {router.rollout_id[:12]} ({router.mode}): {lanes}{shadow}"
        log.info(event)
        return event

    @staticmethod
    def _held(slot: Slot, vid: str) -> Served | None:
        """The version ``vid`` if ``slot`` has it in memory."""
        held: list[Served | None] = [slot.current, slot.previous]
        if slot.routing is not None:
            held += slot.routing.served.values()
        for served in held:
            if served is not None and served.version.id == vid:
                return served
        return None

    def _load(
        self, slot: Slot, router: RolloutRouter, vid: str
    ) -> tuple[Served | None, str | None]:
        """Load ``vid`` and check it as a hot swap would; else refuse it (and abort)."""
        current = slot.current
        assert current is not None
        record = self.host.catalog.get_system_version(vid)
        new, outcome, problems = self.host.checked_load(current, record)
        if new is None:
            return None, self._refuse(slot, router, record.ref, outcome, problems)
        return new, None

    def _refuse(
        self, slot: Slot, router: RolloutRouter, ref: str, outcome: str, problems: list[str]
    ) -> str:
        t, host = slot.target, self.host
        self.refused.add(router.rollout_id)
        host.forget_unused()
        said = "; ".join(problems)
        host.audit_refusal(slot, ref, outcome, problems, rollout=router.rollout_id)
        log.warning("%s: not routing to %s (rollout %s): %s", t.label, ref,
                    router.rollout_id[:12], said)  # fmt: skip
        self._abort(slot, router, f"the server {host.replica} {outcome} {ref}: {said}", outcome)
        return f"{t.label}: {outcome} {ref} (rollout {router.rollout_id[:12]}): {said}"

    def _abort(self, slot: Slot, router: RolloutRouter, reason: str, outcome: str) -> None:
        from regrow.rollout.machine import abort

        t = slot.target
        assert t.alias is not None
        if self.workspace is None:
            log.warning("%s: rollout %s goes on: this host has no workspace to abort it with",
                        t.label, router.rollout_id[:12])  # fmt: skip
            return
        record = self.host.catalog.rollouts.active(t.system, t.alias)
        if record is None or record.id != router.rollout_id:
            return  # it ended meanwhile
        try:
            abort(self.workspace, record, reason=reason, action=f"serve_{outcome}")
        except PermissionDenied as exc:
            stable = self.host.catalog.get_system_version(record.stable_id).ref
            log.warning("%s: cannot abort rollout %s: %s (%s); serving %s only",
                        t.label, record.id[:12], exc.message, exc.hint, stable)  # fmt: skip
        except AliasConflict:
            log.info("%s: rollout %s moved on before this server aborted it",
                     t.label, record.id[:12])  # fmt: skip
        else:
            log.warning("%s: rollout %s aborted: %s", t.label, record.id[:12], reason)

    def _weights(self, slot: Slot, routing: Routing | None) -> None:
        if self.host.metrics is not None:
            weights = routing.weights if routing is not None else {"main": 1.0}
            self.host.metrics.rollout_weights(slot.target.system, weights)

    # -- stepping ---------------------------------------------------------------------------

    def step(self) -> list[str]:
        """Analyse each rollout under way of a followed alias once; the actions other than
        ``hold`` (and ``idle``, ``skip``), in words. One rollout's error does not stop the
        others (see the module docs)."""
        if self.workspace is None:
            return []
        events: list[str] = []
        targets = dict.fromkeys((s.target.system, s.target.alias) for s in self.host.slots)
        for system, alias in targets:
            if alias is None:
                continue
            try:
                event = self._step_one(system, alias)
            except PermissionDenied as exc:
                if not self._denied:
                    self._denied = True
                    log.warning("not stepping rollouts: %s; %s", exc.message, _FIX)
                return events
            except RegrowError as exc:  # a rollout that cannot be analysed now: the next goes on
                self._failed(f"{system}@{alias}", str(exc), None)
            except Exception as exc:  # not ours: the traceback, once
                self._failed(f"{system}@{alias}", f"{type(exc).__name__}: {exc}", exc)
            else:
                self._said.pop(f"{system}@{alias}", None)
                if event is not None:
                    events.append(event)
        return events

    def _step_one(self, system: str, alias: str) -> str | None:
        """Step the rollout of ``system@alias``, if one is under way; its action in words
        (None: none, or a quiet one)."""
        record = self.host.catalog.rollouts.active(system, alias)
        if record is None:
            return None
        result = _step(self.workspace, record, self.step_seconds)
        if result.action in QUIET_ACTIONS:
            return None
        now = result.rollout
        event = (
            f"{system}@{alias}: rollout {now.id[:12]} {result.action} "
            f"({now.state}, share {now.share:g}): {now.reason}"
        )
        log.log(logging.WARNING if result.action in WARNED_ACTIONS else logging.INFO, event)
        return event

    def _failed(self, label: str, said: str, exc: Exception | None) -> None:
        """Log that stepping ``label``'s rollout failed, unless the last step said the same."""
        if self._said.get(label) == said:
            return
        self._said[label] = said
        text = "%s: stepping its rollout failed (trying again every %gs): %s"
        if exc is None:
            log.warning(text, label, self.step_seconds, said)
        else:
            log.error(text, label, self.step_seconds, said, exc_info=exc)


def _step(ws: Governed | None, record: RolloutRecord, period: float) -> StepResult:
    """:func:`regrow.rollout.machine.step` of ``record``, writing no hold when the rollout
    last moved less than ``period`` seconds ago (so replicas hold once a period)."""
    from regrow.rollout.machine import step

    assert ws is not None
    return step(ws, record, min_interval=max(period, 0.0))
