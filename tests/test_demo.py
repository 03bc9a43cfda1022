"""`regrow demo`: the main job, end to end, as the README runs it.

The demo runs once per module (it is the suite's most expensive step, about a minute of two
cores): both tests look at the same run, one at what the command printed, the other at what
:func:`regrow.demo.run_demo` returned to it and left in the workspace.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import regrow.demo
from regrow.cli import main
from regrow.demo import DemoResult


@dataclass(frozen=True)
class DemoRun:
    """One `regrow demo --json --home HOME`: its exit code, its output, the result it printed."""

    code: Any
    out: str
    home: Path
    result: DemoResult


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """Run the demo command once; keep what :func:`regrow.demo.run_demo` returned to it."""
    home = tmp_path_factory.mktemp("demo") / "demo"
    returned: list[DemoResult] = []
    real = regrow.demo.run_demo

    def recording(*args: Any, **kwargs: Any) -> DemoResult:
        result = real(*args, **kwargs)
        returned.append(result)
        return result

    out = io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        patch.setattr(regrow.demo, "run_demo", recording)  # the command imports it when run
        with pytest.raises(SystemExit) as exit_info:
            main(["demo", "--json", "--home", str(home)])
    [result] = returned
    return DemoRun(exit_info.value.code, out.getvalue(), home, result)


def test_demo_retrains_only_the_drifted_member_and_promotes_v2(demo_run: DemoRun) -> None:
    assert demo_run.code in (0, None)
    out = demo_run.out.strip().splitlines()
    summary = json.loads(out[-1])
    assert summary["retrained"] == ["geo", "ensemble"]
    assert summary["reused"] == [
        "contract_onehot",
        "region_onehot",
        "usage_scaled",
        "account",
        "usage",
    ]
    assert summary["metric"] == "roc_auc"
    assert summary["after"] > summary["before"] + 0.02
    assert summary["promoted"] is True
    # the window it planned on came from serving v1: logged predictions joined with labels
    assert summary["served"]["rows"] == summary["served"]["labels"] == 4000
    # v2 went live through a canary that the server analysed and promoted by itself
    assert summary["rollout"]["state"] == "promoted"
    assert summary["rollout"]["moves"][:2] == ["start", "begin"]
    assert {"advance", "promote"} <= set(summary["rollout"]["moves"])
    # Upstream renames a column: an adapter bridges it, nothing is re-fitted, and the renamed
    # window is monitored, planned on and served with the champion's own predictions.
    renamed = summary["renamed"]
    assert renamed["adapters"] == [{"kind": "rename", "column": "support_calls", "source": "calls"}]
    assert renamed["refitted"] == []
    assert renamed["missing"] == []
    assert renamed["same_predictions"] is True
    assert summary["seconds"] > 0  # how fast is for benchmarks/, not a test on a busy machine


def test_demo_human_output_explains_the_update(demo_run: DemoRun) -> None:
    from regrow import Workspace

    result = demo_run.result
    with Workspace.open(demo_run.home) as ws:
        assert {d.column for d in result.drifted} == {"distance_km", "network_quality"}
        v1 = ws.catalog.get_system_version("churn:v1").id
        first = [r for r in ws.catalog.list_monitor_reports() if r.version_id == v1]
        assert first[0].summary["candidates"] == ["geo"]
        assert result.affected == ["geo"]
        window = ws.catalog.get_snapshot(result.plan.window)
        assert (window.name, window.rows) == ("churn-served", 4000)  # 2/3 of 6000, all labelled
        served = [e for e in ws.catalog.audit_events(limit=100_000) if e.action == "feedback.add"]
        # 1000 labels per call: four for the window, one per round of the canary
        assert [e.actor for e in served] == ["labeller"] * (4 + result.rollout["rows"] // 1000)
        assert result.rollout["state"] == "promoted"
        promoted = [
            e for e in ws.catalog.audit_events(limit=100_000) if e.action == "rollout.promote"
        ]
        assert [e.actor for e in promoted] == [ws.identity.name]  # the server's stepper
        assert ws.catalog.get_system_version("churn@champion").ref == "churn:v2"
        lineage = ws.lineage("churn:v2")
        reused = {c["name"] for c in lineage["components"] if c["action"] == "reused"}
        assert reused == {"contract_onehot", "region_onehot", "usage_scaled", "account", "usage"}
