"""`regrow demo`: a partial update, end to end, on seeded synthetic churn data.

Customers churn for reasons in three feature groups — account, usage and geography — each read
by its own member. v1 is trained on six months of history and promoted. Then the company
expands into a remote area: distances grow, network quality drops, and how geography drives
churn changes. regrow's monitor finds which columns drifted and which members the drift costs
loss; the planner probes every member on the labelled recent window and plans the smallest
update (refit only that member, and the ensemble that combines it); running the plan reuses
everything else; v2 beats v1 on later data, its reviewer approves it, and a short canary on
live traffic promotes it.

The recent window comes the way it does in production: v1 is served over the Open Inference
Protocol (:mod:`regrow.serve`, on a loopback port), the later customers are sent to it, a
labelling job sends their outcomes back by request id, and the prediction log joined with
those labels becomes the window that is monitored and planned on. The canary
(:mod:`regrow._demo_canary`) runs on the same server: it routes a share of requests to v2,
analyses the labelled outcomes itself and promotes v2; the server then serves v2 to everyone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from regrow._demo_canary import canary
from regrow._demo_contracts import renamed_column
from regrow._demo_monitor import monitor_summary
from regrow._demo_serving import send_labels, send_rows, served_version
from regrow.catalog.records import SnapshotRecord
from regrow.components.base import Ensemble, Member, Transform
from regrow.config import ServeSettings
from regrow.errors import ConfigError
from regrow.evaluate.gates import GateResult
from regrow.monitor.attribution import ComponentImpact
from regrow.monitor.chunks import Chunking
from regrow.monitor.drift_monitor import FeatureDrift
from regrow.plan.plan import Plan
from regrow.run.runner import RunEvent, RunResult
from regrow.system import System
from regrow.workspace import Workspace

__all__ = ["DemoResult", "build_system", "make_window", "run_demo"]

FEATURE_GROUPS = {
    "account": ["tenure_months", "monthly_fee", "contract"],
    "usage": ["sessions_per_week", "support_calls"],
    "geo": ["distance_km", "network_quality", "region"],
}
SLICES = {
    "monthly_contracts": "contract == 'monthly'",
    "long_tenure": "tenure_months >= 24",
    "region_north": "region == 'north'",
}


def make_window(
    rows: int, *, start: str, days: int, seed: int, expanded: bool = False
) -> pd.DataFrame:
    """Synthetic customers over ``days`` from ``start``; ``expanded`` is the drifted regime.

    In the expanded regime customers live further away with worse network quality, and the
    geographic effect on churn changes sign and shape; account and usage do not change.
    """
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.uniform(0, days, rows)), unit="D")
    tenure = rng.gamma(2.0, 12.0, rows).clip(0, 72)
    fee = rng.normal(65, 20, rows).clip(15, 150)
    contract = rng.choice(["monthly", "annual", "two_year"], rows, p=[0.5, 0.3, 0.2])
    sessions = rng.poisson(6, rows).astype(float)
    calls = rng.poisson(1.2, rows).astype(float)
    region = rng.choice(["north", "south", "east", "west"], rows)
    if expanded:
        distance = rng.gamma(4.0, 8.0, rows)
        quality = rng.beta(3, 4, rows)
    else:
        distance = rng.gamma(2.0, 4.0, rows)
        quality = rng.beta(6, 2, rows)
    account = (
        1.2 * (tenure < 12)
        - 0.02 * tenure
        + 0.015 * (fee - 65)
        + np.select([contract == "monthly", contract == "two_year"], [0.8, -0.8], 0.0)
    )
    usage = -0.25 * (sessions - 6) + 0.6 * (calls - 1.2)
    if expanded:
        geo = 2.5 * np.tanh((quality - 0.45) * 6) - 0.03 * (distance - 32)
    else:
        geo = 0.12 * (distance - 8) - 3.0 * (quality - 0.75)
    logit = -0.6 + account + usage + geo
    churned = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "ts": ts,
            "tenure_months": tenure.round(1),
            "monthly_fee": fee.round(2),
            "contract": contract,
            "sessions_per_week": sessions,
            "support_calls": calls,
            "distance_km": distance.round(2),
            "network_quality": quality.round(3),
            "region": region,
            "churned": churned,
        }
    )


def build_system(seed: int = 0) -> System:
    """Three feature-group members on their transforms, combined by a weighted mean."""

    def gbdt() -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.08, max_leaf_nodes=15)

    return System(
        "churn",
        target="churned",
        task="classification",
        seed=seed,
        components=[
            Transform("contract_onehot", OneHotEncoder(sparse_output=False), inputs=["contract"]),
            Transform("region_onehot", OneHotEncoder(sparse_output=False), inputs=["region"]),
            Transform("usage_scaled", StandardScaler(), inputs=FEATURE_GROUPS["usage"]),
            Member("account", gbdt(), inputs=["tenure_months", "monthly_fee", "contract_onehot"]),
            Member("usage", LogisticRegression(max_iter=500), inputs=["usage_scaled"]),
            Member("geo", gbdt(), inputs=["distance_km", "network_quality", "region_onehot"]),
            Ensemble("ensemble", weights={"account": 1.0, "usage": 1.0, "geo": 1.0}),
        ],
    )


@dataclass
class DemoResult:
    """What the demo did, with the numbers behind each step."""

    home: str
    v1: str
    v2: str
    drifted: list[FeatureDrift]
    affected: list[str]
    impacts: list[ComponentImpact]
    update: RunResult
    plan: Plan
    metric: str
    before: float
    after: float
    verdict: str
    reasons: list[str]
    promoted: bool
    seconds: float
    steps: list[tuple[str, float]] = field(default_factory=list)
    gates: tuple[GateResult, ...] = ()
    approvals: list[str] = field(default_factory=list)  # who approved v2 for champion
    served: dict[str, Any] = field(default_factory=dict)  # the traffic the window came from
    rollout: dict[str, Any] = field(default_factory=dict)  # the canary that promoted v2
    monitor: dict[str, Any] = field(default_factory=dict)  # estimates, multivariate, alerts
    renamed: dict[str, Any] = field(default_factory=dict)  # a renamed column, bridged

    def summary(self) -> dict[str, Any]:
        """The one-line JSON summary `regrow demo --json` ends with."""
        return {
            "retrained": self.update.trained,
            "reused": self.update.reused,
            "metric": self.metric,
            "before": round(self.before, 4),
            "after": round(self.after, 4),
            "promoted": self.promoted,
            "gates": {g.name: g.status for g in self.gates},
            "approved_by": self.approvals,
            "served": self.served,
            "rollout": self.rollout,
            "monitor": self.monitor,
            "renamed": self.renamed,
            "seconds": round(self.seconds, 2),
        }


REVIEWER = "reviewer"
LABELLER = "labeller"


def _reviewer(ws: Workspace) -> tuple[Workspace, str]:
    """The workspace as a second identity, ``reviewer`` (approver), through a new token, and
    the token's id: the champion alias is protected, and a version's author cannot approve it."""
    from regrow.errors import NotFound

    try:
        ws.catalog.identities.get(REVIEWER)
    except NotFound:
        ws.add_identity(REVIEWER, "approver")
    record, token = ws.create_token(REVIEWER, label="regrow demo")
    return Workspace(ws.config, token=token), record.id


@contextmanager
def _labeller(ws: Workspace) -> Iterator[str]:
    """A token of ``labeller`` (operator), the job that sends outcomes back to the server;
    revoked at the end."""
    from regrow.errors import NotFound

    try:
        ws.catalog.identities.get(LABELLER)
    except NotFound:
        ws.add_identity(LABELLER, "operator")
    record, token = ws.create_token(LABELLER, label="regrow demo")
    try:
        yield token
    finally:
        ws.revoke_token(record.id)


def _step(steps: list[tuple[str, float]], name: str, t0: float) -> None:
    """Record how long step ``name`` took since ``t0`` (a ``time.perf_counter()``)."""
    steps.append((name, time.perf_counter() - t0))


def run_demo(
    ws: Workspace,
    *,
    seed: int = 0,
    rows: int = 20_000,
    new_rows: int = 6_000,
    canary_rows: int = 8_000,
    workers: int | None = None,
    progress: Callable[[RunEvent], None] | None = None,
    say: Callable[[str], None] = lambda _msg: None,
) -> DemoResult:
    """Run the demo scenario in ``ws`` and return what happened.

    Its data is small: OpenMP/BLAS run on one thread, since on a busy two-core machine
    threads that spin-wait for each other made boosted-tree fits many times slower.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"the demo's seed must be an int >= 0 (got {seed!r})")
    with threadpool_limits(1):
        return _run_demo(ws, seed, rows, new_rows, canary_rows, workers, progress, say)


def _run_demo(
    ws: Workspace,
    seed: int,
    rows: int,
    new_rows: int,
    canary_rows: int,
    workers: int | None,
    progress: Callable[[RunEvent], None] | None,
    say: Callable[[str], None],
) -> DemoResult:
    started = time.perf_counter()
    steps: list[tuple[str, float]] = []

    t0 = time.perf_counter()
    history = make_window(rows, start="2026-01-01", days=181, seed=seed)
    reference = ws.snapshot(history, name="customers", time_column="ts", slices=SLICES)
    say(f"snapshot {reference.id[:12]}: {reference.rows:,} rows of history (Jan-Jun)")
    system = build_system(seed)
    v1 = ws.train(system, reference, workers=workers, progress=progress, note="initial model")
    _step(steps, "train v1", t0)
    reviewer, token_id = _reviewer(ws)
    try:
        with _labeller(ws) as labeller:
            return _scenario(
                ws, reviewer, labeller, v1, seed, (new_rows, canary_rows), workers, progress,
                say, started, steps,
            )  # fmt: skip
    finally:
        reviewer.revoke_token(token_id)  # the demo's token is not left lying around
        reviewer.close()


def _scenario(
    ws: Workspace,
    reviewer: Workspace,
    labeller: str,
    v1: RunResult,
    seed: int,
    sizes: tuple[int, int],
    workers: int | None,
    progress: Callable[[RunEvent], None] | None,
    say: Callable[[str], None],
    started: float,
    steps: list[tuple[str, float]],
) -> DemoResult:
    new_rows, canary_rows = sizes
    say(
        f"trained {v1.version.ref} ({len(v1.trained)} components) as {ws.identity.name!r}; "
        f"champion is protected: {REVIEWER!r} (approver) reviews it"
    )
    reviewer.approve(v1.version.ref, "champion", note="demo: first model reviewed")
    ws.promote(v1.version.ref, "champion", reason="demo: first model")
    say(f"{REVIEWER!r} approved {v1.version.ref}; promoted it to champion")

    from regrow.serve.app import create_app
    from regrow.serve.local import running

    t0 = time.perf_counter()
    later = make_window(new_rows, start="2026-07-01", days=61, seed=seed + 1, expanded=True)
    cut = int(len(later) * 2 / 3)
    settings = ServeSettings(poll_seconds=0.5, log_flush_seconds=1.0, rollout_step_seconds=0.5)
    server = create_app(ws, settings, models=["churn@champion"])
    with running(server) as url:
        since = datetime.now(UTC)
        traffic = later.iloc[:cut]
        ids = send_rows(url, "churn", traffic.drop(columns=["ts", "churned"]))
        say(
            f"served {len(ids):,} rows of July-August customers from churn@champion "
            f"({v1.version.ref}) at {url} (Open Inference Protocol v2), in "
            f"{len(dict.fromkeys(ids))} requests"
        )
        received = send_labels(url, "churn", labeller, ids, traffic["churned"].tolist())
        server.state.regrow.predictions.flush()
        recent = ws.window("churn", since=since, labelled=True)
        say(
            f"{LABELLER!r} sent {received:,} outcomes back by request id; window "
            f"{recent.id[:12]}: {recent.rows:,} logged predictions joined with their labels"
        )
        _step(steps, "serve", t0)
        result = _update(
            ws, reviewer, v1, recent, later.iloc[cut:], workers, progress, say,
            started, steps,
        )  # fmt: skip
        if result.verdict == "blessed":
            t0 = time.perf_counter()
            live = make_window(canary_rows, start="2026-09-01", days=30, seed=seed + 2,
                               expanded=True)  # fmt: skip
            flush = server.state.regrow.predictions.flush
            result.rollout = canary(ws, url, labeller, result.v2, live, flush, say)
            result.promoted = result.rollout["state"] == "promoted"
            _step(steps, "canary", t0)
        if result.promoted:
            seconds = served_version(url, "churn", result.v2)
            say(f"the rollout promoted {result.v2}; the server serves it to every request "
                f"{seconds:.1f} s later")  # fmt: skip
        result.served = {"rows": len(ids), "labels": received, "window": recent.id[:12]}
    t0 = time.perf_counter()
    champion = result.v2 if result.promoted else v1.version.ref
    result.renamed = renamed_column(ws, champion, later.iloc[cut:], say)
    _step(steps, "renamed column", t0)
    result.seconds = time.perf_counter() - started
    return result


def _update(
    ws: Workspace,
    reviewer: Workspace,
    v1: RunResult,
    recent: SnapshotRecord,
    later: pd.DataFrame,
    workers: int | None,
    progress: Callable[[RunEvent], None] | None,
    say: Callable[[str], None],
    started: float,
    steps: list[tuple[str, float]],
) -> DemoResult:
    t0 = time.perf_counter()
    holdout = ws.snapshot(later, name="customers-holdout", time_column="ts", slices=SLICES)
    monitored = ws.monitor(v1.version.ref, recent, chunking=Chunking(count=4))
    drifted = [f for r in monitored.drift for f in r.features if f.drifted and f.slice is None]
    affected = monitored.candidates
    seen = monitor_summary(ws, monitored)
    say(
        f"drift in {monitored.drifted_columns}; members whose loss it raised: {affected} "
        f"(report {monitored.record.id[:12] if monitored.record else '-'})"
    )
    for line in seen.pop("lines"):
        say(f"  {line}")
    _step(steps, "monitor", t0)

    t0 = time.perf_counter()
    plan = ws.plan(v1.version.ref, recent)
    say(
        f"plan {plan.id[:12]}: {[a.describe() for a in plan.actions] or 'nothing to do'} "
        f"(estimated {plan.cost.get('estimated_cpu_seconds', 0):.2f} CPU s; a full retrain "
        f"{plan.cost.get('full_retrain_cpu_seconds', 0):.2f})"
    )
    for action in plan.actions:
        say(f"  {action.describe()}: {action.reason}")
    _step(steps, "plan", t0)
    if plan.empty:
        raise ConfigError(
            "the demo's planner found nothing to update",
            hint="this is a bug in the demo scenario: please report it",
        )
    t0 = time.perf_counter()
    ran = ws.run_plan(plan, approve=plan.needs_approval, workers=workers, progress=progress)
    update = ran.result
    _step(steps, "update v2", t0)
    t0 = time.perf_counter()
    _, comparison = ws.evaluate(update.version.ref, holdout, baseline="churn@champion")
    _step(steps, "evaluate", t0)
    promoted = False
    approvals: list[str] = []
    if comparison.verdict == "blessed":
        approval = reviewer.approve(update.version.ref, "champion", note="demo: gates passed")
        approvals.append(approval.approver)
        say(f"{REVIEWER!r} approved {update.version.ref} for champion, once live traffic agrees")
    return DemoResult(
        home=str(ws.home),
        v1=v1.version.ref,
        v2=update.version.ref,
        drifted=drifted,
        affected=affected,
        impacts=[i for i in monitored.impacts if i.kind == "member"],
        update=update,
        plan=plan,
        metric=comparison.metric,
        before=float(comparison.baseline or 0.0),
        after=comparison.candidate,
        verdict=comparison.verdict,
        reasons=list(comparison.reasons),
        promoted=promoted,
        seconds=time.perf_counter() - started,
        steps=steps,
        gates=comparison.gates,
        approvals=approvals,
        monitor=seen,
    )
