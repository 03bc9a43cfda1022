"""The models a server serves, and hot swaps when their aliases move.

A server serves **targets**: ``SYSTEM@ALIAS`` (followed as the alias moves) or ``SYSTEM:vN``
(pinned). Each has a :class:`Slot` holding the :class:`~regrow.serve.served.Served` version
now (``current``) and the one before it (``previous``, kept in memory for an instant swap
back). A model, in protocol terms, is a system; its model versions are the aliases served and
the versions they hold (``/v2/models/churn/versions/champion``, ``.../versions/v2``).

**Hot swap.** A background thread looks up every followed alias in the catalog each
``poll_seconds`` (so every replica over the same catalog sees a move within that delay, plus
the time to load). When an alias holds a new version, the thread, off the request path:

1. loads it and warms it on its golden set (:func:`~regrow.serve.served.load_served`);
2. compares its signature with the current one: a difference (an input added, removed or
   retyped; other classes) refuses the swap, audited ``serve.swap_refused`` with the
   differences, and the current version keeps serving;
3. checks its outputs on the golden set (refused the same way if they are wrong);
4. swaps: one assignment, so every request sees the old version or the new one. Requests
   already queued on the old one finish on it (each version has its own batcher). Audited
   ``serve.swap`` (from, to, the golden set's agreement between the two, and this replica).

An alias moved back to the previous version swaps back at once, without loading (outcome
``swapped_back``). A version that was refused is not tried again until the alias moves
elsewhere; one that failed to load (a store that could not be read, say) is tried again every
:data:`RETRY_FAILED_SECONDS`. If the alias moved again while a version loaded (a rollback
during the load), the loaded version is not swapped in: the next poll follows the alias.

**Lanes.** Without a rollout, every request takes one lane, ``"main"`` (:class:`OneLane`).
While a rollout of a followed alias is under way, the poller also publishes the slot's
:attr:`Slot.routing` (the rollout's router and each version it names, loaded and checked as
for a hot swap) and steps the rollout every ``step_seconds`` (:mod:`.follow`); requests go
through it (:mod:`.routing`). When the rollout moves the alias (promoted, rolled back), the
hot swap takes the version from the routing instead of loading it again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from regrow.errors import ConfigError, NotFound, RegrowError
from regrow.serve.errors import ModelNotFound, NotReady
from regrow.serve.follow import RolloutFollower
from regrow.serve.served import GOLDEN_ROWS, OnScored, Served, load_served
from regrow.serve.signature import differences
from regrow.serve.targets import Target, default_targets

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.records import SystemVersionRecord
    from regrow.catalog.store import ArtifactStore
    from regrow.components.fitted import FittedComponent
    from regrow.rollout.machine import Governed
    from regrow.serve.metrics import Metrics
    from regrow.serve.routing import Routing

__all__ = [
    "MAIN",
    "RETRY_FAILED_SECONDS",
    "ModelHost",
    "OneLane",
    "Router",
    "Slot",
    "Target",
    "default_targets",
]

log = logging.getLogger("regrow.serve")

#: The lane of every request when no rollout is under way (the stable lane of a rollout).
MAIN = "main"

#: Seconds before a version that failed to load is tried again.
RETRY_FAILED_SECONDS = 30.0


class Router(Protocol):
    """Chooses the lane of a request from its key (outside a rollout; a rollout's own
    :class:`~regrow.rollout.router.RolloutRouter` keeps the same contract)."""

    def lane_for(self, request_key: str) -> str: ...


class OneLane:
    """Every request in lane ``"main"``."""

    def lane_for(self, request_key: str) -> str:
        return MAIN


class Slot:
    """One target, and the versions of it in memory."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.current: Served | None = None
        self.previous: Served | None = None
        #: While a rollout of the alias is under way: its router and versions (else None).
        self.routing: Routing | None = None
        #: Version ids not to try again (refused or failed), with the reason.
        self.refused: dict[str, str] = {}
        #: Of those, the ones that failed to load: when they may be tried again (monotonic).
        self.retry_at: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"Slot({self.target.label!r}, current={self.current!r})"

    @property
    def names(self) -> list[str]:
        """The model versions this slot answers to: its alias, and ``vN`` of what it holds."""
        names = [self.target.alias] if self.target.alias else []
        if self.current is not None:
            names.append(f"v{self.current.version.number}")
        elif self.target.number is not None:
            names.append(f"v{self.target.number}")
        return names


class ModelHost:
    """The slots of a server, resolution of model names, and the hot-swap poller.

    ``router`` chooses the lane of requests outside a rollout (default: :class:`OneLane`).
    ``workspace`` is what the poller aborts a rollout with (a refused candidate) and steps
    rollouts with, every ``step_seconds`` (0: never); see :mod:`.follow`.
    """

    def __init__(
        self,
        catalog: Catalog,
        store: ArtifactStore,
        targets: Sequence[Target],
        *,
        poll_seconds: float = 2.0,
        max_rows: int = 10_000,
        golden_rows: int = GOLDEN_ROWS,
        home: str | None = None,
        actor: str | None = None,
        metrics: Metrics | None = None,
        on_scored: OnScored | None = None,
        router: Router | None = None,
        workspace: Governed | None = None,
        step_seconds: float = 0.0,
    ) -> None:
        if not targets:
            raise ConfigError(
                "nothing to serve: no system has a 'champion' alias",
                hint="promote a version (regrow promote churn:v1), or list models in [serve] "
                "models of config.toml",
            )
        self.catalog = catalog
        self.store = store
        self.slots = [Slot(t) for t in targets]
        self.poll_seconds = poll_seconds
        self.max_rows = max_rows
        self.golden_rows = golden_rows
        self.home = home
        self.actor = actor
        self.metrics = metrics
        self.on_scored = on_scored
        self.router: Router = router or OneLane()
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        #: Routes the followed slots through their rollouts, and steps those (:mod:`.follow`).
        self.rollouts = RolloutFollower(self, workspace, step_seconds)
        self._memo: dict[str, FittedComponent] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what is served ---------------------------------------------------------------------

    @property
    def models(self) -> list[str]:
        """The systems served, in the order of the targets."""
        return list(dict.fromkeys(s.target.system for s in self.slots))

    @property
    def ready(self) -> bool:
        """Whether every slot holds a version."""
        return all(s.current is not None for s in self.slots)

    def slots_of(self, model: str) -> list[Slot]:
        """The slots of system ``model``; :class:`ModelNotFound` if none."""
        found = [s for s in self.slots if s.target.system == model]
        if not found:
            raise ModelNotFound(
                f"unknown model {model!r}", hint=f"the models served are {self.models}"
            )
        return found

    def resolve(self, model: str, version: str | None = None) -> tuple[Slot, Served, str]:
        """The slot, version and model-version name ``model``/``version`` names.

        ``version`` is an alias served, or ``vN``/``N`` of a version an alias holds; None is
        the model's first target. :class:`ModelNotFound` (404) for what is not served,
        :class:`NotReady` (503) for a slot still loading.
        """
        slots = self.slots_of(model)
        slot: Slot | None = None
        if version is None:
            slot = slots[0]
            version = slot.names[0]
        else:
            wanted = f"v{version}" if version.isdigit() else version
            slot = next((s for s in slots if wanted in s.names), None)
        if slot is None:
            known = [n for s in slots for n in s.names]
            raise ModelNotFound(
                f"model {model!r} has no version {version!r} here",
                hint=f"its versions served are {known}",
            )
        served = slot.current
        if served is None:
            raise NotReady(
                f"model {model!r} ({slot.target.label}) is not loaded yet",
                hint="wait until GET /v2/health/ready answers 200",
            )
        return slot, served, version

    # -- loading ----------------------------------------------------------------------------

    def load(self) -> None:
        """Load every slot that holds nothing yet (raising the first error)."""
        for slot in self.slots:
            if slot.current is None:
                record = self._holder(slot)
                slot.current = self.load_version(record)
                if self.metrics is not None and slot.target.alias:
                    self.metrics.serving(slot.target.system, slot.target.alias, record.ref, None)
                self.rollouts.route(slot)

    def _holder(self, slot: Slot) -> SystemVersionRecord:
        t = slot.target
        ref = t.label if t.alias is None else self.catalog.get_alias(t.system, t.alias).version_id
        return self.catalog.get_system_version(ref)

    def checked_load(
        self, current: Served, record: SystemVersionRecord
    ) -> tuple[Served | None, str, list[str]]:
        """Load ``record`` and check it against ``current`` as a hot swap does (signature,
        golden set): ``(version, "", [])``, or ``(None, outcome, problems)`` with outcome
        ``failed`` (it did not load) or ``refused`` (it loaded and differs)."""
        try:
            new = self.load_version(record)
        except RegrowError as exc:
            return None, "failed", [str(exc)]
        except Exception as exc:  # a broken artifact's own error: refuse, keep serving
            return None, "failed", [f"{type(exc).__name__}: {exc}"]
        problems = differences(current.signature, new.signature)
        problems += [f"on the golden set, {p}" for p in new.check()]
        if problems:
            return None, "refused", problems
        return new, "", []

    def load_version(self, record: SystemVersionRecord) -> Served:
        """Load and warm version ``record`` (sharing fitted components with those loaded)."""
        with self._lock:
            return load_served(
                self.catalog, self.store, record, memo=self._memo, home=self.home,
                golden_rows=self.golden_rows, max_rows=self.max_rows, on_scored=self.on_scored,
            )  # fmt: skip

    def forget_unused(self) -> None:
        """Drop fitted components that no version in memory uses any more."""
        keep = {
            a
            for s in self.slots
            for v in (s.current, s.previous, *(s.routing.served.values() if s.routing else ()))
            if v is not None
            for a in v.model.artifacts.values()
        }
        with self._lock:
            for key in [k for k in self._memo if k not in keep]:
                del self._memo[key]

    # -- hot swap ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the poller thread (it follows the aliases until :meth:`stop`)."""
        if self._thread is None and any(s.target.alias for s in self.slots):
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="regrow-swap", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the poller thread (waiting for a load in progress to end)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        every = self.rollouts.step_seconds
        wait = min(self.poll_seconds, every) if every > 0 else self.poll_seconds
        step_at = time.monotonic() + every
        while not self._stop.wait(wait):
            if every > 0 and time.monotonic() >= step_at:
                step_at = time.monotonic() + every
                try:
                    self.rollouts.step()
                except Exception:  # as for a poll: try again next time
                    log.exception("stepping the rollouts failed")
            try:
                self.poll()
            except Exception:  # a catalog that cannot be reached now: try again next time
                log.exception("looking for alias moves failed")

    def poll(self) -> list[str]:
        """Look at every followed alias once, swapping what moved and routing it through its
        rollout; what happened, in words."""
        events = []
        for slot in self.slots:
            if slot.target.alias is not None and slot.current is not None:
                events += [e for e in (self._follow(slot), self.rollouts.route(slot)) if e]
        return events

    def _follow(self, slot: Slot) -> str | None:
        t = slot.target
        assert t.alias is not None
        assert slot.current is not None
        try:
            vid = self.catalog.get_alias(t.system, t.alias).version_id
        except NotFound:
            return None  # the alias is gone: keep serving what it held
        current = slot.current
        for failed, when in list(slot.retry_at.items()):
            if time.monotonic() >= when:  # a load that failed: try it again
                del slot.retry_at[failed]
                slot.refused.pop(failed, None)
        if vid == current.version.id:
            slot.refused.clear()  # the alias moved elsewhere: a refused version may come back
            slot.retry_at.clear()
            return None
        if vid in slot.refused:
            return None
        slot.refused.clear()
        slot.retry_at.clear()
        if slot.previous is not None and vid == slot.previous.version.id:
            return self._swap(slot, slot.previous, "swapped_back")
        routed = slot.routing.served.get(vid) if slot.routing is not None else None
        if routed is not None:  # a rollout's version, loaded and checked: no need to load it
            return self._swap(slot, routed, "swapped")
        record = self.catalog.get_system_version(vid)
        new, outcome, problems = self.checked_load(current, record)
        if new is None:
            return self._refuse(slot, vid, outcome, problems, record.ref)
        try:
            still = self.catalog.get_alias(t.system, t.alias).version_id
        except NotFound:
            return None
        if still != vid:  # moved again while it loaded (a rollback): follow that next time
            self.forget_unused()
            return None
        return self._swap(slot, new, "swapped")

    def _swap(self, slot: Slot, new: Served, outcome: str) -> str:
        old = slot.current
        assert old is not None
        assert slot.target.alias is not None
        agreement = new.agreement(old)
        slot.previous, slot.current = old, new  # requests read slot.current once
        self.forget_unused()
        t = slot.target
        payload = {
            "from": old.ref,
            "to": new.ref,
            "outcome": outcome,
            "replica": self.replica,
            "golden_rows": len(next(iter(new.golden.values()), [])),
            "golden_agreement": agreement,
        }
        self.catalog.audit("serve.swap", f"alias:{t.label}", payload, actor=self.actor)
        if self.metrics is not None:
            self.metrics.swap(t.system, slot.names[0], outcome)
            self.metrics.serving(t.system, slot.names[0], new.ref, old.ref)
        log.info("%s: %s -> %s (%s)", t.label, old.ref, new.ref, outcome)
        return f"{t.label}: {old.ref} -> {new.ref} ({outcome})"

    def audit_refusal(
        self, slot: Slot, ref: str, outcome: str, problems: list[str], **extra: Any
    ) -> None:
        """Audit (``serve.swap_refused`` or ``serve.swap_failed``) and count a version of
        ``slot`` this replica would not serve."""
        t = slot.target
        assert slot.current is not None
        assert t.alias is not None
        action = "serve.swap_refused" if outcome == "refused" else "serve.swap_failed"
        payload = {
            "from": slot.current.ref, "to": ref, "problems": problems, "replica": self.replica,
            **extra,
        }  # fmt: skip
        self.catalog.audit(action, f"alias:{t.label}", payload, actor=self.actor)
        if self.metrics is not None:
            self.metrics.swap(t.system, t.alias, outcome)

    def _refuse(
        self, slot: Slot, vid: str, outcome: str, problems: list[str], ref: str | None = None
    ) -> str:
        t = slot.target
        assert slot.current is not None
        assert t.alias is not None
        slot.refused[vid] = "; ".join(problems)
        if outcome == "failed":
            slot.retry_at[vid] = time.monotonic() + RETRY_FAILED_SECONDS
        self.forget_unused()
        self.audit_refusal(slot, ref or vid, outcome, problems)
        log.warning("%s: not swapping to %s: %s", t.label, ref or vid, "; ".join(problems))
        return f"{t.label}: {outcome} {ref or vid}: " + "; ".join(problems)
