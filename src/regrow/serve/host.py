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

**Lanes.** Requests go through a :class:`Router`: ``lane_for(request_key) -> lane``. Until
rollouts exist there is one lane, ``"main"`` (:class:`OneLane`); a rollout router (#15) will
map a request's key to a lane and each lane to a version.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from regrow.catalog.refs import check_name
from regrow.errors import ConfigError, NotFound, RegrowError
from regrow.serve.errors import ModelNotFound, NotReady
from regrow.serve.served import GOLDEN_ROWS, OnScored, Served, load_served
from regrow.serve.signature import differences

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.records import SystemVersionRecord
    from regrow.catalog.store import ArtifactStore
    from regrow.components.fitted import FittedComponent
    from regrow.serve.metrics import Metrics

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

#: The one lane there is until rollouts route requests to several.
MAIN = "main"

#: Seconds before a version that failed to load is tried again.
RETRY_FAILED_SECONDS = 30.0


class Router(Protocol):
    """Chooses the lane of a request from its key (the seam for rollouts, #15)."""

    def lane_for(self, request_key: str) -> str: ...


class OneLane:
    """Every request in lane ``"main"``."""

    def lane_for(self, request_key: str) -> str:
        return MAIN


@dataclass(frozen=True)
class Target:
    """What a slot serves: ``system@alias``, or version ``number`` of ``system`` (pinned).

    >>> Target.parse("churn@champion").alias, Target.parse("churn:v2").number
    ('champion', 2)
    """

    system: str
    alias: str | None = None
    number: int | None = None

    @classmethod
    def parse(cls, ref: str) -> Target:
        """``SYSTEM@ALIAS`` or ``SYSTEM:vN`` (``SYSTEM:N``)."""
        if "@" in ref:
            system, _, alias = ref.partition("@")
            return cls(check_name("system", system), alias=check_name("alias", alias))
        system, _, number = ref.rpartition(":")
        number = number.removeprefix("v")
        if not system or not number.isdigit():
            raise ConfigError(
                f"cannot serve {ref!r}: name a SYSTEM@ALIAS or a SYSTEM:vN",
                hint='for example "churn@champion" or "churn:v2"',
            )
        return cls(check_name("system", system), number=int(number))

    @property
    def label(self) -> str:
        """``churn@champion`` or ``churn:v2``."""
        return f"{self.system}@{self.alias}" if self.alias else f"{self.system}:v{self.number}"


class Slot:
    """One target, and the versions of it in memory."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.current: Served | None = None
        self.previous: Served | None = None
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


def default_targets(catalog: Catalog) -> list[Target]:
    """``SYSTEM@champion`` for every system that has a ``champion`` alias."""
    return [Target(a.system, alias=a.name) for a in catalog.list_aliases() if a.name == "champion"]


class ModelHost:
    """The slots of a server, resolution of model names, and the hot-swap poller."""

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
                slot.current = self._load(record)
                if self.metrics is not None and slot.target.alias:
                    self.metrics.serving(slot.target.system, slot.target.alias, record.ref, None)

    def _holder(self, slot: Slot) -> SystemVersionRecord:
        t = slot.target
        ref = t.label if t.alias is None else self.catalog.get_alias(t.system, t.alias).version_id
        return self.catalog.get_system_version(ref)

    def _load(self, record: SystemVersionRecord) -> Served:
        with self._lock:
            return load_served(
                self.catalog, self.store, record, memo=self._memo, home=self.home,
                golden_rows=self.golden_rows, max_rows=self.max_rows, on_scored=self.on_scored,
            )  # fmt: skip

    def _forget_unused(self) -> None:
        """Drop fitted components that no version in memory uses any more."""
        keep = {
            a
            for s in self.slots
            for v in (s.current, s.previous)
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
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # a catalog that cannot be reached now: try again next time
                log.exception("looking for alias moves failed")

    def poll(self) -> list[str]:
        """Look at every followed alias once, swapping what moved; what happened, in words."""
        events = []
        for slot in self.slots:
            if slot.target.alias is not None and slot.current is not None:
                event = self._follow(slot)
                if event:
                    events.append(event)
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
        record = self.catalog.get_system_version(vid)
        try:
            new = self._load(record)
        except RegrowError as exc:
            return self._refuse(slot, vid, "failed", [str(exc)], record.ref)
        except Exception as exc:  # a broken artifact's own error: refuse, keep serving
            problem = f"{type(exc).__name__}: {exc}"
            return self._refuse(slot, vid, "failed", [problem], record.ref)
        problems = differences(current.signature, new.signature)
        problems += [f"on the golden set, {p}" for p in new.check()]
        if problems:
            return self._refuse(slot, vid, "refused", problems, new.ref)
        try:
            still = self.catalog.get_alias(t.system, t.alias).version_id
        except NotFound:
            return None
        if still != vid:  # moved again while it loaded (a rollback): follow that next time
            self._forget_unused()
            return None
        return self._swap(slot, new, "swapped")

    def _swap(self, slot: Slot, new: Served, outcome: str) -> str:
        old = slot.current
        assert old is not None
        assert slot.target.alias is not None
        agreement = new.agreement(old)
        slot.previous, slot.current = old, new  # requests read slot.current once
        self._forget_unused()
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

    def _refuse(
        self, slot: Slot, vid: str, outcome: str, problems: list[str], ref: str | None = None
    ) -> str:
        t = slot.target
        assert slot.current is not None
        assert t.alias is not None
        slot.refused[vid] = "; ".join(problems)
        if outcome == "failed":
            slot.retry_at[vid] = time.monotonic() + RETRY_FAILED_SECONDS
        self._forget_unused()
        action = "serve.swap_refused" if outcome == "refused" else "serve.swap_failed"
        payload = {
            "from": slot.current.ref,
            "to": ref or vid,
            "problems": problems,
            "replica": self.replica,
        }
        self.catalog.audit(action, f"alias:{t.label}", payload, actor=self.actor)
        if self.metrics is not None:
            self.metrics.swap(t.system, t.alias, outcome)
        log.warning("%s: not swapping to %s: %s", t.label, ref or vid, "; ".join(problems))
        return f"{t.label}: {outcome} {ref or vid}: " + "; ".join(problems)
