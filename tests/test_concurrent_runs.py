"""Runs with leases: racing runs fit each component once; a dead run's work is taken over."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.demo import make_window
from regrow.fingerprint import component_parts, derive_seed, fingerprint

NUMERIC = ["tenure_months", "monthly_fee", "sessions_per_week", "support_calls"]


def twelve() -> System:
    """Four transforms, seven members and their ensemble: twelve components."""
    transforms = [Transform(f"t_{c}", StandardScaler(), inputs=[c]) for c in NUMERIC]
    inputs = [[f"t_{c}"] for c in NUMERIC] + [
        ["distance_km"],
        ["network_quality"],
        ["distance_km", "network_quality"],
    ]
    members = [
        Member(f"m{i}", LogisticRegression(max_iter=200), inputs=cols)
        for i, cols in enumerate(inputs)
    ]
    weights = {m.name: 1.0 for m in members}
    return System(
        "twelve",
        target="churned",
        components=[*transforms, *members, Ensemble("ensemble", weights=weights)],
    )


@pytest.fixture
def data() -> pd.DataFrame:
    return make_window(800, start="2026-01-01", days=30, seed=0)


def test_four_racing_trains_fit_each_component_about_once(
    tmp_path: Path, data: pd.DataFrame
) -> None:
    home = tmp_path / "ws"
    with Workspace.init(home) as ws:
        snap = ws.snapshot(data, name="d")
    trained: list[int] = []
    versions: list[str] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(4)

    def train() -> None:
        try:
            with Workspace.open(home) as ws:
                gate.wait()
                result = ws.train(twelve(), ws.catalog.get_snapshot(snap.id), workers=1)
                trained.append(len(result.trained))
                versions.append(result.version.id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=train) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sum(trained) <= 14, trained  # 42-48 before fit leases
    assert len(set(versions)) == 1
    with Workspace.open(home) as ws:
        runs = ws.catalog.list_runs("twelve")
        assert {r.status for r in runs} == {"succeeded"}
        assert all(r.holder and r.holder["pid"] for r in runs)


def test_a_dead_runs_component_is_taken_over_once_its_lease_lapses(
    tmp_path: Path, data: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGROW_LEASE_SECONDS", "1")
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(data, name="d")
        system = twelve()
        first = system.order()[0]
        parts = component_parts(
            system,
            first,
            column_hashes=snap.column_hashes,
            seed=derive_seed(system.seed, first),
            upstream={},
        )
        # A run that took the first component's lease and was then killed: no heartbeat.
        dead = ws.catalog.start_run(
            system="twelve", kind="train", seed=0, environment={}, params={}
        )
        ws.catalog.leases.hold_run(dead.id, lease_seconds=1, holder={"host": "gone", "pid": 1})
        assert ws.catalog.leases.acquire(
            dead.id, {fingerprint(parts): ("twelve", first)}, lease_seconds=1
        )
        started = time.perf_counter()
        result = ws.train(system, snap, workers=1)
        assert first in result.trained
        assert time.perf_counter() - started >= 0.5  # it waited for the lease to lapse
        assert ws.catalog.get_run(dead.id).state() == "abandoned"
        assert [r.id for r in ws.catalog.leases.abandoned()] == [dead.id]
        assert ws.catalog.leases.holders([fingerprint(parts)]) == {}


def test_a_bad_lease_setting_is_a_clear_error(
    tmp_path: Path, data: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regrow.errors import ConfigError

    monkeypatch.setenv("REGROW_LEASE_SECONDS", "soon")
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(data, name="d")
        with pytest.raises(ConfigError, match="REGROW_LEASE_SECONDS"):
            ws.train(twelve(), snap, workers=1)
        assert ws.catalog.list_runs() == []  # refused before a run was recorded


def test_a_run_killed_on_this_host_is_taken_over_without_waiting_for_its_lease(
    tmp_path: Path, data: pd.DataFrame
) -> None:
    import socket
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(gone.stdout)
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(data, name="d")
        system = twelve()
        first = system.order()[0]
        parts = component_parts(
            system,
            first,
            column_hashes=snap.column_hashes,
            seed=derive_seed(system.seed, first),
            upstream={},
        )
        dead = ws.catalog.start_run(
            system="twelve", kind="train", seed=0, environment={}, params={}
        )
        holder = {"host": socket.gethostname(), "pid": dead_pid, "user": "x"}
        ws.catalog.leases.hold_run(dead.id, lease_seconds=300, holder=holder)
        ws.catalog.leases.acquire(
            dead.id, {fingerprint(parts): ("twelve", first)}, lease_seconds=300
        )
        started = time.perf_counter()
        result = ws.train(system, snap, workers=1)
        assert time.perf_counter() - started < 60  # not the 300 s lease
        assert first in result.trained
        record = ws.catalog.get_run(dead.id)
        assert record.status == "abandoned"
        assert f"pid {dead_pid}" in (record.error or "")
