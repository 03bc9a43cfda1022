"""A plan's budgets: checked on its estimate before it runs, and on what it used while it runs.

The policy's ``budgets`` section holds three limits per plan: ``max_cpu_seconds``,
``max_gpu_seconds`` and ``max_cost`` (money, in the ``[costs]`` currency of ``config.toml``,
see :mod:`regrow.costs`). They hold twice:

=========================== ==============================================================
when                        what happens
=========================== ==============================================================
before the plan runs        :func:`estimate_plan` prices the plan's estimate; every limit it
                            crosses is named with both numbers (:meth:`RunBudget.crossed`)
                            and ``Workspace.run_plan`` refuses the plan unless an approver
                            runs it with ``--approve`` (then those limits are lifted)
while it runs               after each component it fits, the runner calls :func:`check`:
                            once the components fitted in this run used more than a limit
                            while some are left, the run stops with a
                            :class:`~regrow.errors.RunError` that gives the numbers; the
                            components it finished are recorded, so running the plan again
                            resumes, and the next run counts only what it fits itself
=========================== ==============================================================

**The estimate.** CPU seconds are the plan's own (the cost model of
:mod:`regrow.plan.costs`). The planner estimates no GPU seconds, so :func:`estimate_plan`
learns them as the CPU model does, from history: for each component the plan trains, the
median GPU seconds per row of its earlier versions that used a GPU (``info["usage"]``,
measured by :class:`regrow.costs.Meter`), times the rows the action trains on. A component an
earlier, stopped run of the same plan fitted counts 0 (running the plan again reuses it). A
torch member that never used a GPU is estimated at 0 GPU seconds: for it the GPU budget holds
while running only, and the estimate's notes say so. Money is the estimated CPU and GPU
seconds at the prices of the backend the plan runs on; peak memory is not estimated, so the
memory price counts only while running. Without prices, ``max_cost`` is ignored, with a note.

>>> budget = RunBudget(cpu_seconds=1000, money=0.30, currency="EUR", rates=Rates(cpu_hour=1.2))
>>> [str(c) for c in budget.crossed(PlanEstimate(cpu_seconds=1240, money=0.4133))]
['1,240 CPU s (budgets.max_cpu_seconds 1,000)', 'EUR 0.41 (budgets.max_cost 0.30)']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from regrow.costs import CostProfile, Rates, TaskUsage
from regrow.errors import RunError

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.plan.plan import Plan
    from regrow.plan.policy import Budgets
    from regrow.run.runner import ComponentOutcome

__all__ = ["Crossed", "PlanEstimate", "RunBudget", "check", "estimate_plan"]


@dataclass(frozen=True)
class PlanEstimate:
    """What a plan is estimated to use: CPU and GPU seconds, and money (None: no prices).

    ``notes`` say what the estimate leaves out (a component with no GPU history).
    """

    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    money: float | None = None
    currency: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunBudget:
    """The limits of one plan run (None: no limit), with the prices that turn usage into
    money on its backend. ``money`` is None whenever no price is set."""

    cpu_seconds: float | None = None
    gpu_seconds: float | None = None
    money: float | None = None
    currency: str = ""
    rates: Rates = field(default_factory=Rates)
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, budgets: Budgets, profile: CostProfile, backend: str) -> RunBudget:
        """The policy's ``budgets`` priced with ``profile`` on ``backend``. ``max_cost``
        without any price is dropped, and :attr:`notes` says so."""
        notes: tuple[str, ...] = ()
        money = budgets.max_cost
        if money is not None and not profile.priced:
            notes = (
                f"budgets.max_cost {money:,g} is ignored: no price is configured "
                "([costs] in config.toml)",
            )
            money = None
        return cls(
            cpu_seconds=budgets.max_cpu_seconds,
            gpu_seconds=budgets.max_gpu_seconds,
            money=money,
            currency=profile.currency,
            rates=profile.rates(backend),
            notes=notes,
        )

    def notes_on(self, estimate: PlanEstimate) -> tuple[str, ...]:
        """What this budget and ``estimate`` leave out: an ignored ``max_cost``, and a GPU
        estimate without history when a GPU limit is set."""
        return (*self.notes, *(estimate.notes if self.gpu_seconds is not None else ()))

    def lifted(self, crossed: Iterable[Crossed]) -> RunBudget:
        """This budget without the limits ``crossed`` names: an approver took the plan
        over them."""
        keys = {c.key for c in crossed}
        return replace(
            self,
            cpu_seconds=None if "budgets.max_cpu_seconds" in keys else self.cpu_seconds,
            gpu_seconds=None if "budgets.max_gpu_seconds" in keys else self.gpu_seconds,
            money=None if "budgets.max_cost" in keys else self.money,
        )

    def crossed(self, estimate: PlanEstimate) -> list[Crossed]:
        """Each limit ``estimate`` is over; ``str()`` of one reads
        ``"<estimate> (<limit's key> <limit>)"``."""
        return self._over(estimate.cpu_seconds, estimate.gpu_seconds, estimate.money, _count)

    def used(self, usages: Iterable[TaskUsage]) -> tuple[float, float, float]:
        """CPU seconds, GPU seconds and money of ``usages`` at this budget's prices."""
        found = list(usages)
        return (
            sum(u.cpu_seconds for u in found),
            sum(u.gpu_seconds for u in found),
            sum(self.rates.money(u) for u in found),
        )

    def _over(
        self, cpu: float, gpu: float, money: float | None, fmt: Callable[[float], str]
    ) -> list[Crossed]:
        found: list[Crossed] = []
        for value, limit, unit, key in (
            (cpu, self.cpu_seconds, "CPU s", "budgets.max_cpu_seconds"),
            (gpu, self.gpu_seconds, "GPU s", "budgets.max_gpu_seconds"),
        ):
            if limit is not None and value > limit:
                found.append(Crossed(f"{fmt(value)} {unit}", key, _count(limit), unit))
        if self.money is not None and money is not None and money > self.money:
            cur = self.currency
            found.append(Crossed(f"{cur} {_money(money)}".strip(), "budgets.max_cost",
                               _money(self.money), cur, unit_first=True))  # fmt: skip
        return found


@dataclass(frozen=True)
class Crossed:
    """One limit crossed: what was used or estimated (with its unit), the limit's policy key
    and its value, as they are written in messages."""

    used: str
    key: str
    limit: str
    unit: str
    unit_first: bool = False

    def __str__(self) -> str:
        return f"{self.used} ({self.key} {self.limit})"

    @property
    def limit_with_unit(self) -> str:
        """``1,000 CPU s`` or ``EUR 0.30``."""
        return (
            f"{self.unit} {self.limit}".strip() if self.unit_first else f"{self.limit} {self.unit}"
        )


def _count(value: float) -> str:
    """Seconds for a message: thousands separated, no decimals from 10 up."""
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.2g}"


def _money(value: float) -> str:
    """Money for a message: cents, or two significant digits below a cent."""
    return f"{value:,.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.2g}"


def check(
    budget: RunBudget | float | None,
    outcomes: Iterable[ComponentOutcome],
    left: Sequence[str],
) -> None:
    """Stop a run whose fitted components (``outcomes`` with action ``trained``) used more
    than ``budget`` (a :class:`RunBudget`, or CPU seconds) while ``left`` components wait.

    Raises :class:`~regrow.errors.RunError` naming each limit crossed with both numbers.
    """
    if budget is None or not left:
        return
    if not isinstance(budget, RunBudget):
        budget = RunBudget(cpu_seconds=float(budget))
    fitted = [o for o in outcomes if o.action == "trained"]
    cpu = sum(o.cpu_seconds for o in fitted)  # the runner's own figure, as before
    _cpu, gpu, money = budget.used(o.usage or TaskUsage(cpu_seconds=o.cpu_seconds) for o in fitted)
    over = budget._over(cpu, gpu, money, _seconds)
    if not over:
        return
    said = ", and ".join(f"{o.used}, over {o.limit_with_unit} ({o.key})" for o in over)
    keys = " / ".join(o.key for o in over)
    raise RunError(
        f"run stopped over its budget: the {len(fitted)} component(s) it fitted used {said}; "
        f"{len(left)} left: {', '.join(left)}",
        hint="the finished components are kept: run it again to resume (the next run counts "
        f"only what it fits), after raising {keys} if it should not stop again, or with "
        "--approve (approver role) on a plan estimated over it, which lifts that budget",
    )


def _seconds(value: float) -> str:
    return f"{value:.2f}"


def estimate_plan(catalog: Catalog, plan: Plan, profile: CostProfile, backend: str) -> PlanEstimate:
    """The plan's estimated CPU seconds, its GPU seconds learned from the history of the
    components it trains, and their money on ``backend`` at ``profile``'s prices (None when
    the profile sets none). See the module docs."""
    cpu = float(plan.cost.get("estimated_cpu_seconds") or 0.0)
    gpu = 0.0
    unknown: list[str] = []
    window_rows = int(plan.data.get("window_rows") or 0)
    # A component an earlier (stopped) run of this plan fitted is reused when it runs again.
    earlier = {
        r.id
        for r in catalog.list_runs(plan.system, limit=200)
        if r.kind == "plan" and r.params.get("plan") == plan.id
    }
    for action in plan.actions:
        names = _trained_by(catalog, plan, action.component)
        rows = action.cost.rows if action.cost is not None else window_rows
        for name in names:
            rate, torch, fitted = _gpu_rate(catalog, plan.system, name, earlier, rows)
            if fitted:
                continue
            if rate is not None:
                gpu += rate * rows
            elif torch:
                unknown.append(name)
    notes: tuple[str, ...] = ()
    if unknown:
        notes = (
            f"no GPU history for {', '.join(sorted(set(unknown)))}: estimated at 0 GPU s; "
            "budgets.max_gpu_seconds holds while running",
        )
    money = profile.money(backend, TaskUsage(cpu_seconds=cpu, gpu_seconds=gpu))
    return PlanEstimate(
        cpu_seconds=cpu,
        gpu_seconds=round(gpu, 6),
        money=money if profile.priced else None,
        currency=profile.currency if profile.priced else "",
        notes=notes,
    )


def _trained_by(catalog: Catalog, plan: Plan, component: str) -> list[str]:
    """The components an action on ``component`` trains (``*``: every one of the version)."""
    if component != "*":
        return [component]
    return list(catalog.get_system_version(plan.version_id).manifest)


def _gpu_rate(
    catalog: Catalog, system: str, component: str, runs: set[str], rows: int
) -> tuple[float | None, bool, bool]:
    """The GPU seconds per row ``component``'s versions that used a GPU show for a fit on
    ``rows`` rows (None: none did), whether its newest version is a torch model (it may use a
    GPU), and whether one of ``runs`` fitted it. The rate is pooled as the CPU estimate's is
    (:func:`regrow.plan.costs.pooled_rate`): a fit on a handful of rows measures mostly its
    set-up, and its rate alone would put a large fit's estimate out by orders of magnitude."""
    from regrow.plan.costs import pooled_rate

    history = catalog.component_history(system, component)
    seen: list[tuple[int, float]] = []
    for version in history:
        usage = version.info.get("usage")
        if not isinstance(usage, dict):
            continue
        gpu, n = usage.get("gpu_seconds"), usage.get("rows")
        if isinstance(gpu, int | float) and gpu > 0 and isinstance(n, int) and n > 0:
            seen.append((n, gpu / n))
    recipe = (history[0].parts.get("recipe") or {}) if history else {}
    torch = "torch" in str(recipe.get("class", "")).lower()
    fitted = any(v.run_id in runs for v in history)
    return (pooled_rate(seen, max(rows, 1))[0] if seen else None), torch, fitted
