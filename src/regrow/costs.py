"""Cost accounting: what each task used, what it costs, and what a system's runs cost.

=================== ===================================================================
part                what it does
=================== ===================================================================
:class:`Meter`      measures one task where it runs (CPU, wall, GPU, peak memory, rows)
:class:`TaskUsage`  the figures of one task, stored in the component version's ``info``
                    and in the run's summary (``summary["usage"]``, see :func:`summarize`)
:class:`CostProfile` the ``[costs]`` section of ``config.toml``: prices per backend
:func:`cost_report` a system's runs in a time range, each with its figures and money
=================== ===================================================================

The ``[costs]`` section prices CPU hours, GPU hours and GB-hours of memory (a GB is 10^9
bytes), for every backend or per backend; all prices default to zero, and then no money is
shown::

    [costs]
    currency = "EUR"
    cpu_hour = 0.04              # every backend, unless its own table says otherwise
    memory_gb_hour = 0.005
    [costs.ray]
    cpu_hour = 0.06
    gpu_hour = 2.50

A task costs ``cpu_seconds / 3600 * cpu_hour + gpu_seconds / 3600 * gpu_hour +
peak_memory_bytes / 1e9 * wall_seconds / 3600 * memory_gb_hour`` at its run's backend's
prices; a run costs the sum of its tasks.

>>> profile = CostProfile.parse({"currency": "EUR", "cpu_hour": 0.36, "ray": {"gpu_hour": 3.6}})
>>> profile.rates("ray")
Rates(cpu_hour=0.36, gpu_hour=3.6, memory_gb_hour=0.0)
>>> round(profile.money("ray", TaskUsage(cpu_seconds=100, gpu_seconds=10)), 4)
0.02
"""

from __future__ import annotations

import difflib
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from regrow.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.records import RunRecord

__all__ = [
    "ActionCost",
    "CostProfile",
    "CostReport",
    "Meter",
    "Rates",
    "RunCost",
    "TaskUsage",
    "WatchCost",
    "cost_report",
    "summarize",
]

#: The backends a profile prices: :data:`regrow.run.backends.BACKENDS` (not imported: the run
#: layer imports this module; a test checks the two agree).
BACKENDS = ("local", "ray")
_RATES = ("cpu_hour", "gpu_hour", "memory_gb_hour")
_GB = 1e9


@dataclass(frozen=True)
class TaskUsage:
    """What one task used: CPU, wall and GPU seconds, peak memory in bytes, rows trained on."""

    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    gpu_seconds: float = 0.0
    peak_memory_bytes: int = 0
    rows: int = 0

    def to_dict(self) -> dict[str, float | int]:
        """The figures as JSON (rounded to the microsecond)."""
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskUsage:
        """The usage :meth:`to_dict` wrote (unknown keys ignored, missing ones zero)."""
        known = [f.name for f in fields(cls)]
        return cls(**{k: data[k] for k in known if isinstance(data.get(k), int | float)})


class Meter:
    """Measures one task in the process that runs it, from construction to :meth:`stop`.

    * **CPU seconds**: :func:`time.process_time`, the process's user + system CPU time,
      every thread of the process included (BLAS and OpenMP threads of the fit count).
    * **wall seconds**: :func:`time.perf_counter`.
    * **peak memory**: the task's resident-set high-water mark over the resident set the
      process had when the task started, from ``getrusage(RUSAGE_SELF).ru_maxrss`` and
      ``/proc/self/statm``. A process's high-water mark cannot be reset, so this is exact
      only when the task raised it; when an earlier task (or anything earlier in the
      process) had already set a higher mark, the figure is the growth of the resident set
      from the task's start to its end, a lower bound. Either way it is process-wide (other
      threads working at the same time count) and it is 0 where ``resource`` or
      ``/proc`` is missing. A worker process or a Ray worker runs one task at a time, so
      its figure is the task's own.
    * **GPU seconds**: the task's wall seconds when it allocated memory on a CUDA device
      through torch (the device was held for the task), else 0. Only looked at when torch is
      already imported: measuring never imports torch or initializes CUDA.
    * **rows**: given to :meth:`stop` by the task (the rows it read to train on).
    """

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self._peak = _peak_rss()
        self._rss = _rss()
        self._gpu = _cuda_allocations()

    def stop(self, rows: int) -> TaskUsage:
        """The task's usage from the meter's start until now; ``rows`` it trained on."""
        gpu_used = _cuda_allocations() > self._gpu
        if gpu_used:
            _cuda_synchronize()  # the GPU's queued work belongs to the task
        wall = time.perf_counter() - self._wall
        cpu = time.process_time() - self._cpu
        peak, rss = _peak_rss(), _rss()
        start = self._rss if self._rss is not None else self._peak
        if peak > self._peak:
            memory = peak - start  # the task set the process's new high-water mark
        else:
            memory = (rss - start) if rss is not None and self._rss is not None else 0
        return TaskUsage(
            cpu_seconds=cpu,
            wall_seconds=wall,
            gpu_seconds=wall if gpu_used else 0.0,
            peak_memory_bytes=max(int(memory), 0),
            rows=int(rows),
        )


def _peak_rss() -> int:
    """The process's resident-set high-water mark in bytes (0 where unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak if sys.platform == "darwin" else peak * 1024  # macOS: bytes; Linux: KiB


def _rss() -> int | None:
    """The process's resident set now, in bytes (Linux); None where unknown."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _cuda_allocations() -> int:
    """How many CUDA allocations torch made so far in this process (0: none or no torch)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return 0
    return sum(
        int(torch.cuda.memory_stats(d).get("allocation.all.allocated", 0))
        for d in range(torch.cuda.device_count())
    )


def _cuda_synchronize() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def summarize(usages: Mapping[str, TaskUsage], backend: str) -> dict[str, Any]:
    """A run's ``summary["usage"]``: the totals of its tasks (``usages``, by component),
    the largest peak, and each task's figures under ``components``.

    >>> summarize({"a": TaskUsage(1.0, 2.0, 0.0, 10, 5), "b": TaskUsage(0.5, 1.0, 0.0, 30, 5)},
    ...           "local")["peak_memory_bytes"]
    30
    """
    return {
        "backend": backend,
        "cpu_seconds": round(sum(u.cpu_seconds for u in usages.values()), 6),
        "gpu_seconds": round(sum(u.gpu_seconds for u in usages.values()), 6),
        "wall_seconds": round(sum(u.wall_seconds for u in usages.values()), 6),
        "peak_memory_bytes": max((u.peak_memory_bytes for u in usages.values()), default=0),
        "rows": sum(u.rows for u in usages.values()),
        "components": {name: u.to_dict() for name, u in usages.items()},
    }


# -- the profile ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    """Prices of one backend: per CPU hour, per GPU hour, per GB-hour of memory."""

    cpu_hour: float = 0.0
    gpu_hour: float = 0.0
    memory_gb_hour: float = 0.0

    def money(self, usage: TaskUsage) -> float:
        """What ``usage`` costs at these prices."""
        memory_gb_hours = usage.peak_memory_bytes / _GB * usage.wall_seconds / 3600
        return (
            usage.cpu_seconds / 3600 * self.cpu_hour
            + usage.gpu_seconds / 3600 * self.gpu_hour
            + memory_gb_hours * self.memory_gb_hour
        )


@dataclass(frozen=True)
class CostProfile:
    """The ``[costs]`` section: a currency and prices per backend (see the module docs)."""

    currency: str = ""
    local: Rates = Rates()
    ray: Rates = Rates()

    @property
    def priced(self) -> bool:
        """Whether any price is set (else no money is shown)."""
        return any(v > 0 for b in BACKENDS for v in asdict(self.rates(b)).values())

    def rates(self, backend: str) -> Rates:
        """The prices of ``backend`` (an unknown name: the local backend's)."""
        return {"local": self.local, "ray": self.ray}.get(backend, self.local)

    def money(self, backend: str, usage: TaskUsage) -> float:
        """What ``usage`` costs on ``backend``."""
        return self.rates(backend).money(usage)

    @classmethod
    def parse(cls, section: object, where: str = "config.toml") -> CostProfile:
        """The profile of a ``[costs]`` table read from TOML (``where`` names the file); its
        mistakes (:meth:`read`) are raised together."""
        profile, found = cls.read(section, where)
        if len(found) == 1:
            raise found[0]
        if found:
            hints = dict.fromkeys(e.hint for e in found if e.hint)
            raise ConfigError(
                f"{len(found)} mistakes in [costs] of {where!r}: "
                + "; ".join(e.message.replace(f" in {where!r}", "") for e in found),
                hint="; ".join(hints) or None,
            )
        return profile

    @classmethod
    def read(
        cls, section: object, where: str = "config.toml"
    ) -> tuple[CostProfile, list[ConfigError]]:
        """The profile of a ``[costs]`` table, its wrong values left at their defaults, and
        every mistake, each an error naming its key and value (a file's loader names them
        with its other sections')."""
        found: list[ConfigError] = []
        return cls._read(section, where, found), found

    @classmethod
    def _read(cls, section: object, where: str, found: list[ConfigError]) -> CostProfile:
        """The profile of ``section`` with its wrong values left at their defaults; each
        mistake joins ``found``."""
        if not isinstance(section, dict):
            found.append(ConfigError(
                f"[costs] in {where!r} must be a table (got {section!r})",
                hint="write [costs] on a line of its own, its keys below it",
            ))  # fmt: skip
            return cls()
        _known_keys(section, "[costs]", where, (*_RATES, "currency", *BACKENDS), found)
        shared = _prices(section, _RATES, "[costs]", where, found)
        per_backend: dict[str, Rates] = {}
        for backend in BACKENDS:
            own = section.get(backend, {})
            name = f"[costs.{backend}]"
            if not isinstance(own, dict):
                found.append(ConfigError(
                    f"{name} in {where!r} must be a table (got {own!r})",
                    hint=f"e.g. {name} with cpu_hour = 0.05 below it",
                ))  # fmt: skip
                own = {}
            _known_keys(own, name, where, _RATES, found)
            per_backend[backend] = Rates(**{**shared, **_prices(own, own, name, where, found)})
        currency = section.get("currency", "")
        if not isinstance(currency, str) or ("currency" in section and not currency.strip()):
            found.append(ConfigError(
                f"[costs] currency in {where!r} must be a non-empty string (got {currency!r})",
                hint='e.g. currency = "EUR"',
            ))  # fmt: skip
            currency = ""
        profile = cls(currency=currency.strip(), **per_backend)
        if profile.priced and not profile.currency and "currency" not in section:
            found.append(ConfigError(
                f"[costs] in {where!r} sets prices but no currency",
                hint='name the prices\' currency, e.g. currency = "EUR"',
            ))  # fmt: skip
        return profile

    def lines(self) -> list[str]:
        """The TOML of the profile (nothing for the default profile), to write config.toml."""
        if self == CostProfile():
            return []
        shared = {k: v for k in _RATES if (v := getattr(self.local, k)) == getattr(self.ray, k)}
        text = ["[costs]", f"currency = {json.dumps(self.currency)}"]
        text += [f"{k} = {v!r}" for k, v in shared.items() if v]
        for backend in BACKENDS:
            own = {k: v for k, v in asdict(self.rates(backend)).items() if k not in shared}
            if own:
                text += [f"[costs.{backend}]", *(f"{k} = {v!r}" for k, v in own.items())]
        return text


def _known_keys(
    section: Mapping[str, Any],
    name: str,
    where: str,
    known: Iterable[str],
    found: list[ConfigError],
) -> None:
    known = list(known)
    unknown = sorted(set(section) - set(known))
    if unknown:
        close = [c for u in unknown for c in difflib.get_close_matches(u, known, n=1)]
        found.append(ConfigError(
            f"unknown key(s) {unknown} in {name} of {where!r}",
            hint=(f"did you mean {close[0]!r}? " if close else "")
            + "the keys are " + ", ".join(repr(k) for k in known),
        ))  # fmt: skip


def _prices(
    section: Mapping[str, Any],
    keys: Iterable[str],
    name: str,
    where: str,
    found: list[ConfigError],
) -> dict[str, float]:
    """The prices of ``keys`` that ``section`` holds and that are prices (the others join
    ``found``; unknown keys are named by :func:`_known_keys`)."""
    prices: dict[str, float] = {}
    for key in keys:
        if key not in section or key not in _RATES:
            continue
        try:
            prices[key] = _price(section[key], f"{name} {key}", where)
        except ConfigError as exc:
            found.append(exc)
    return prices


def _price(value: object, name: str, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigError(
            f"{name} in {where!r} must be a number >= 0 (got {value!r})",
            hint="a price per hour in the profile's currency, e.g. cpu_hour = 0.04",
        )
    return float(value)


# -- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionCost:
    """One action of a plan run: its estimated CPU seconds next to the actual ones.

    ``action`` is None for a component the run trained that no action names (a stacked
    ensemble refitted after its members); ``actual_cpu_seconds`` is None when the action
    trained nothing (retiring a member).
    """

    action: str | None
    component: str
    estimated_cpu_seconds: float | None
    actual_cpu_seconds: float | None


@dataclass(frozen=True)
class RunCost:
    """One run's figures. Runs recorded before cost accounting have only CPU and wall
    seconds: their GPU seconds, peak memory and rows are None, their money counts CPU only."""

    run: str
    kind: str
    status: str
    started_at: datetime
    backend: str | None
    trained: tuple[str, ...]
    cpu_seconds: float
    wall_seconds: float
    gpu_seconds: float | None
    peak_memory_bytes: int | None
    rows: int | None
    money: float | None
    plan: str | None = None
    estimated_cpu_seconds: float | None = None
    actions: tuple[ActionCost, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The run's figures as JSON."""
        body = asdict(self)
        body["started_at"] = self.started_at.isoformat()
        body["trained"] = list(self.trained)
        body["actions"] = [asdict(a) for a in self.actions]
        return body


@dataclass(frozen=True)
class WatchCost:
    """What ``regrow watch``'s cycles used outside the runs they started (a run's own figures
    are in its :class:`RunCost`): CPU seconds per step (window, monitor, forecast, decide,
    plan, evaluate, rollout, and "between steps": the rest of the cycles' CPU; the largest
    first, adding up to ``cpu_seconds``), wall seconds, and money at the CPU price."""

    cycles: int
    dry_run_cycles: int
    cpu_seconds: float
    wall_seconds: float
    steps: dict[str, float]
    money: float | None

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON."""
        return asdict(self)


@dataclass(frozen=True)
class CostReport:
    """A system's runs started in ``[since, until)``, newest first, and their totals; with
    ``watch``, what its watch cycles in that range used outside those runs."""

    system: str
    since: datetime | None
    until: datetime
    currency: str | None
    runs: tuple[RunCost, ...] = field(default_factory=tuple)
    watch: WatchCost | None = None

    def totals(self) -> dict[str, Any]:
        """Sums over the runs (the largest peak memory); money None when it is not shown."""
        known = [r for r in self.runs if r.peak_memory_bytes is not None]
        planned = [r for r in self.runs if r.estimated_cpu_seconds is not None]
        # a plan stopped and run again has a run per try, each with the plan's estimate: it
        # counts once, beside the CPU every try spent
        estimates = {r.plan or r.run: r.estimated_cpu_seconds or 0.0 for r in planned}
        return {
            "runs": len(self.runs),
            "components_trained": sum(len(r.trained) for r in self.runs),
            "cpu_seconds": sum(r.cpu_seconds for r in self.runs),
            "gpu_seconds": sum(r.gpu_seconds or 0.0 for r in self.runs),
            "wall_seconds": sum(r.wall_seconds for r in self.runs),
            "peak_memory_bytes": max((r.peak_memory_bytes or 0 for r in known), default=None),
            "rows": sum(r.rows or 0 for r in self.runs),
            "money": sum(r.money or 0.0 for r in self.runs) if self.currency else None,
            "plan_runs": len(planned),
            "plans": len(estimates),
            "estimated_cpu_seconds": sum(estimates.values()),
            "actual_cpu_seconds": sum(r.cpu_seconds for r in planned),
            "all_cpu_seconds": sum(r.cpu_seconds for r in self.runs)
            + (self.watch.cpu_seconds if self.watch else 0.0),
        }

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "system": self.system,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
            "currency": self.currency,
            "runs": [r.to_dict() for r in self.runs],
            "watch": self.watch.to_dict() if self.watch else None,
            "totals": self.totals(),
        }


def cost_report(
    catalog: Catalog,
    system: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    profile: CostProfile | None = None,
) -> CostReport:
    """The runs of ``system`` started in ``[since, until)`` (aware times; ``until``
    defaults to now), each with its usage, its money at ``profile``'s prices (None when
    the profile sets none) and, for a plan run, each action's estimated and actual CPU.

    Raises :class:`~regrow.errors.NotFound` for an unknown system.
    """
    known = catalog.list_systems()
    if system not in known and not catalog.list_runs(system, limit=1):  # runs, no version yet
        raise NotFound("system", system, hint=f"known systems: {', '.join(known) or 'none'}")
    profile = profile or CostProfile()
    end = until or datetime.now(UTC)
    runs = [r for r in _runs_since(catalog, system, since) if _utc(r.started_at) < end]
    costs = tuple(_run_cost(catalog, r, profile) for r in runs)
    currency = profile.currency if profile.priced else None
    return CostReport(
        system, since, end, currency, costs, _watch_cost(catalog, system, since, end, profile)
    )


_RUN_REST = "run (besides fitting)"
"""The step name :class:`WatchCost` gives the CPU of a cycle's run step that the run's own
record does not count (what it fitted is counted there)."""


def _watch_cost(
    catalog: Catalog, system: str, since: datetime | None, until: datetime, profile: CostProfile
) -> WatchCost | None:
    """The watch cycles of ``system`` started in ``[since, until)``, summed; None without any."""
    cycles = [
        c
        for c in catalog.watches.cycles(system, limit=1_000_000, since=since)
        if _utc(c.started_at) < until
    ]
    if not cycles:
        return None
    steps: dict[str, float] = {}
    cpu = wall = 0.0
    for c in cycles:
        spent = c.body.get("cost") or {}
        by_step = {k: float(v) for k, v in (c.body.get("step_cpu_seconds") or {}).items()}
        # The run's own record counts the CPU of what it fitted; the rest of the step
        # (reading the model and the rows, storing the training data, the records) only
        # this: subtracting the whole step left it counted nowhere.
        step = by_step.pop("run", 0.0)
        fitted = (c.body.get("run") or {}).get("actual_cpu_seconds")
        ran = min(step, float(fitted)) if isinstance(fitted, int | float) else step
        if step - ran > 0.0:
            by_step[_RUN_REST] = step - ran
        for name, seconds in by_step.items():
            steps[name] = steps.get(name, 0.0) + seconds
        cpu += max(float(spent.get("cpu_seconds") or 0.0) - ran, 0.0)
        wall += float(spent.get("wall_seconds") or 0.0)
    # what the cycles spent between their steps (the lease, the records, the audit log)
    if (between := cpu - sum(steps.values())) > 0.0005:
        steps["between steps"] = between
    money = profile.money("local", TaskUsage(cpu_seconds=cpu)) if profile.priced else None
    return WatchCost(
        cycles=len(cycles),
        dry_run_cycles=sum(1 for c in cycles if c.dry_run),
        cpu_seconds=round(cpu, 3),
        wall_seconds=round(wall, 3),
        steps={k: round(v, 3) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])},
        money=money,
    )


def _runs_since(catalog: Catalog, system: str, since: datetime | None) -> list[RunRecord]:
    """The runs of ``system`` started at ``since`` or later, newest first (paged)."""
    limit = 200
    while True:
        runs = catalog.list_runs(system, limit=limit)
        reached = since is not None and runs and _utc(runs[-1].started_at) < since
        if len(runs) < limit or reached:
            return [r for r in runs if since is None or _utc(r.started_at) >= since]
        limit *= 4


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _run_cost(catalog: Catalog, run: RunRecord, profile: CostProfile) -> RunCost:
    summary = run.summary or {}
    usage = summary.get("usage")
    trained = tuple(str(n) for n in summary.get("trained") or ())
    wall = summary.get("seconds")
    if not isinstance(wall, int | float):
        finished = run.finished_at or run.heartbeat_at
        wall = (_utc(finished) - _utc(run.started_at)).total_seconds() if finished else 0.0
    if isinstance(usage, dict):
        backend = str(usage.get("backend") or "local")
        tasks = {n: TaskUsage.from_dict(u) for n, u in (usage.get("components") or {}).items()}
        cpu = float(usage.get("cpu_seconds") or 0.0)
        gpu: float | None = float(usage.get("gpu_seconds") or 0.0)
        peak: int | None = int(usage.get("peak_memory_bytes") or 0)
        rows: int | None = int(usage.get("rows") or 0)
        money = sum(profile.money(backend, u) for u in tasks.values())
        unfinished = usage.get("unfinished")  # the task a stopped run was in (its CPU)
        if isinstance(unfinished, dict):
            money += profile.money(backend, TaskUsage.from_dict(unfinished))
        found: str | None = backend
    else:  # recorded before cost accounting: CPU and wall seconds only
        cpu = float(summary.get("cpu_seconds") or 0.0)
        gpu = peak = rows = None
        tasks = {}
        money = profile.money("local", TaskUsage(cpu_seconds=cpu))
        found = None
    plan_id = run.params.get("plan") if run.kind == "plan" else None
    estimated = run.params.get("estimated_cpu_seconds") if plan_id else None
    return RunCost(
        run=run.id,
        kind=run.kind,
        status=_status(run),
        started_at=_utc(run.started_at),
        backend=found,
        trained=trained,
        cpu_seconds=cpu,
        wall_seconds=float(wall),
        gpu_seconds=gpu,
        peak_memory_bytes=peak,
        rows=rows,
        money=money if profile.priced else None,
        plan=str(plan_id) if plan_id else None,
        estimated_cpu_seconds=float(estimated) if isinstance(estimated, int | float) else None,
        actions=_actions(catalog, str(plan_id), trained, tasks) if plan_id else (),
    )


def _actions(
    catalog: Catalog, plan_id: str, trained: tuple[str, ...], tasks: Mapping[str, TaskUsage]
) -> tuple[ActionCost, ...]:
    """Each action of the plan with its estimate and the CPU of what it trained, then the
    components trained that no action names."""
    try:
        body = catalog.get_plan(plan_id).body
    except LookupError:
        return ()
    found: list[ActionCost] = []
    named: set[str] = set()
    for action in body.get("actions") or ():
        component = str(action.get("component"))
        cost = action.get("cost") or {}
        estimate = cost.get("cpu_seconds")
        mine = list(trained) if component == "*" else [c for c in trained if c == component]
        named.update(mine)
        actual = sum(tasks[c].cpu_seconds for c in mine if c in tasks) if mine else None
        found.append(
            ActionCost(
                str(action.get("kind")),
                component,
                float(estimate) if isinstance(estimate, int | float) else None,
                actual if tasks else None,
            )
        )
    for component in trained:
        if component not in named:
            actual = tasks[component].cpu_seconds if component in tasks else None
            found.append(ActionCost(None, component, None, actual))
    return tuple(found)


def _status(run: RunRecord) -> str:
    """How run ``run`` stands: its state, and ``interrupted`` for a run stopped by Ctrl-C or
    SIGTERM (the catalog records it ``failed``; run again, it resumes)."""
    from regrow.catalog.records import stopped_by_signal

    state = run.state()
    return "interrupted" if state == "failed" and stopped_by_signal(run.summary) else state
