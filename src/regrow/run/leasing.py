"""A run's leases while it executes: a heartbeat, and one fit per fingerprint across runs.

:class:`RunLease` wraps :mod:`regrow.catalog.leases` for the runner. The run's lease starts
with the run itself (``start_run(lease_seconds=..., holder=...)`` writes it in the run's own
insert, so a kill at any later point is seen); entering a ``RunLease`` starts a heartbeat
thread that renews it every third of the lease, and leaving it stops the thread and gives
back every fit lease the run still holds.
A process killed with ``kill -9`` leaves neither: its lease simply lapses, the run reads as
``abandoned``, and its fit leases become free to take over.

Before fitting a wave, the runner :meth:`~RunLease.claim`\\ s the fingerprints it needs. Those
another live run holds are not fitted again: :meth:`~RunLease.wait` polls until each has a
recorded version (reused) or its lease was given back or lapsed (then claimed again). Four
runs of one system started at once so fit each component once, not four times. A holder that
ran on this host and whose process is gone is marked abandoned at once, so a run started again
right after a ``kill -9`` does not wait for the lease to lapse.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from regrow.catalog.catalog import Catalog
from regrow.catalog.leases import DEFAULT_LEASE_SECONDS
from regrow.catalog.records import ComponentVersionRecord
from regrow.errors import CatalogError, ConfigError

__all__ = ["RunLease", "lease_seconds", "process_gone"]

_POLL_FIRST, _POLL_MAX = 0.1, 1.0


def lease_seconds() -> int:
    """The lease length: ``$REGROW_LEASE_SECONDS``, else 30 seconds.

    >>> lease_seconds() >= 1
    True
    """
    raw = os.environ.get("REGROW_LEASE_SECONDS")
    if raw is None or raw == "":
        return DEFAULT_LEASE_SECONDS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(
            f"REGROW_LEASE_SECONDS must be a whole number of seconds >= 1 (got {raw!r})",
            hint=f"unset it for the default of {DEFAULT_LEASE_SECONDS} s",
        )
    return value


class RunLease:
    """The leases of run ``run_id`` of ``system`` while it executes (a context manager).

    The run must have been started with its lease (``start_run(lease_seconds=seconds)``).
    """

    def __init__(self, catalog: Catalog, run_id: str, system: str, seconds: int) -> None:
        self.catalog = catalog
        self.run_id = run_id
        self.system = system
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RunLease:
        if self.catalog.url != "sqlite://":  # an in-memory catalog has one connection, one user
            self._thread = threading.Thread(
                target=self._beat, name=f"regrow-heartbeat-{self.run_id[:8]}", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.catalog.leases.release(self.run_id)

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.catalog.leases.heartbeat(self.run_id):
                    return  # the run was finished or marked abandoned: nothing to keep alive
            except Exception:  # a database hiccup: the next beat tries again
                continue

    def claim(self, wanted: Mapping[str, str]) -> tuple[list[str], list[str]]:
        """Take fit leases on ``wanted`` (component → fingerprint).

        Returns (components this run may fit now, components another live run is fitting).
        """
        taken = self.catalog.leases.acquire(
            self.run_id,
            {fp: (self.system, name) for name, fp in wanted.items()},
            lease_seconds=self.seconds,
        )
        mine = [n for n, fp in wanted.items() if fp in taken]
        return mine, [n for n in wanted if n not in mine]

    def release(self, fingerprints: Sequence[str]) -> None:
        """Give back fit leases once their versions are recorded."""
        self.catalog.leases.release(self.run_id, fingerprints)

    def wait(self, held: Mapping[str, str]) -> tuple[dict[str, ComponentVersionRecord], list[str]]:
        """Wait until some of ``held`` (component → fingerprint) is settled by its holder.

        Returns (components whose version was recorded meanwhile, components whose lease was
        given back or lapsed without a version: the caller claims those again). At least one
        of the two is non-empty.
        """
        delay = _POLL_FIRST
        checked: set[str] = set()
        while True:
            found = self.catalog.find_component_versions(self.system, dict(held))
            holders = self.catalog.leases.holders(held.values())
            for run_id in {h.run_id for h in holders.values()} - checked:
                checked.add(run_id)
                self._abandon_if_gone(run_id)
            holders = self.catalog.leases.holders(held.values())
            now = time.time()
            free = [
                n
                for n, fp in held.items()
                if n not in found
                and (fp not in holders or holders[fp].expires_at.timestamp() < now)
            ]
            if found or free:
                return dict(found), free
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    def _abandon_if_gone(self, run_id: str) -> None:
        """Mark ``run_id`` abandoned now if it ran on this host and its process is gone.

        Its lease would lapse on its own; a run re-started right after a ``kill -9`` need
        not wait for that. On another host only the lease can tell.
        """
        try:
            run = self.catalog.get_run(run_id)
        except LookupError:
            return
        if run.status != "running" or not process_gone(run.holder):
            return
        pid = (run.holder or {}).get("pid")
        with contextlib.suppress(CatalogError):  # it finished, or another run got there first
            self.catalog.leases.abandon(run_id, reason=f"its process (pid {pid}) is gone")


def process_gone(holder: Mapping[str, Any] | None) -> bool:
    """Whether ``holder`` (a run's host, pid, user) names a process of this host that is gone.

    >>> process_gone({"host": socket.gethostname(), "pid": os.getpid()})
    False
    >>> process_gone({"host": "elsewhere", "pid": 1})
    False
    """
    if not holder or holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, owned by someone else
        return False
    return False
