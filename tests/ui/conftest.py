"""Fixtures of the dashboard's tests: the demo's workspace, made once per session.

``demo`` runs :func:`regrow.demo.run_demo` (small sizes, one worker) into a session folder
(one for all pytest-xdist workers), then adds what the demo leaves out: a rollout under way
(``churn:v3`` against ``churn@champion``, 25% then 50%: below 100%, it needs no approval to
start) for the rollout page's buttons, and two API tokens, one of role operator and one of
role viewer. Tests that change the workspace use their own copy (``demo_copy``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from regrow import Workspace

with warnings.catch_warnings():
    # Starlette asks for httpx2 instead of httpx; its TestClient works with httpx as it is.
    warnings.filterwarnings("ignore", message=".*install `httpx2`", category=UserWarning)
    from fastapi.testclient import TestClient


@dataclass(frozen=True)
class Demo:
    """The demo's workspace and what the tests look up in it."""

    home: Path
    operator: str  # an API token of role operator
    viewer: str  # an API token of role viewer
    rollout: str  # the id of the rollout under way
    drifted_report: str  # the id of the first monitor report: distance_km drifted
    plan: str  # the id of the plan that refitted geo
    run: str  # the id of that plan's run


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo, run once per session (see the module docs); under pytest-xdist, once for
    every worker together (the first builds it under a lock, the others read it back)."""
    shared = os.environ.get("PYTEST_XDIST_WORKER") is not None
    root = tmp_path_factory.getbasetemp()
    root = root.parent if shared else root
    with (root / "ui-demo.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        made = root / "ui-demo.json"
        if not made.is_file():
            demo = _make_demo(root / "ui-demo")
            made.write_text(json.dumps({**asdict(demo), "home": str(demo.home)}))
        found = json.loads(made.read_text())
    return Demo(**{**found, "home": Path(found["home"])})


def _make_demo(home: Path) -> Demo:
    from regrow.demo import run_demo
    from regrow.rollout import machine

    with Workspace.init(home) as ws:
        run_demo(ws, rows=4000, new_rows=3000, workers=1)
        record = machine.start(ws, "churn:v3", mode="split", steps="25,50", reason="ui tests")
        ws.add_identity("ops", "operator")
        ws.add_identity("viv", "viewer")
        _, operator = ws.create_token("ops")
        _, viewer = ws.create_token("viv")
        drifted = [r for r in ws.catalog.list_monitor_reports() if r.summary.get("drifted")]
        plan = next(p for p in ws.catalog.list_plans() if p.status == "executed")
    assert plan.run_id is not None
    return Demo(home, operator, viewer, record.id, drifted[-1].id, plan.id, plan.run_id)


@pytest.fixture
def demo_copy(demo: Demo, tmp_path: Path) -> Demo:
    """A copy of the demo's workspace to change at will."""
    home = tmp_path / "demo"
    shutil.copytree(demo.home, home)
    keys = ("operator", "viewer", "rollout", "drifted_report", "plan", "run")
    return Demo(home, *(getattr(demo, k) for k in keys))


@pytest.fixture(scope="module")
def client(demo: Demo) -> Iterator[TestClient]:
    """The dashboard alone (``regrow ui``'s app) over the demo's workspace."""
    from regrow.ui import create_ui_app

    with TestClient(create_ui_app(demo.home)) as test_client:
        yield test_client
