"""`regrow demo`: the main job, end to end, as the README runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regrow.cli import main


def test_demo_retrains_only_the_drifted_member_and_promotes_v2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--json", "--home", str(tmp_path / "demo")])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out.strip().splitlines()
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


def test_demo_human_output_explains_the_update(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from regrow import Workspace
    from regrow.demo import run_demo

    with Workspace.init(tmp_path / "ws") as ws:
        result = run_demo(ws, rows=4000, new_rows=3000, workers=1)
        assert {d.column for d in result.drifted} == {"distance_km", "network_quality"}
        v1 = ws.catalog.get_system_version("churn:v1").id
        first = [r for r in ws.catalog.list_monitor_reports() if r.version_id == v1]
        assert first[0].summary["candidates"] == ["geo"]
        assert result.affected == ["geo"]
        window = ws.catalog.get_snapshot(result.plan.window)
        assert (window.name, window.rows) == ("churn-served", 2000)  # 2/3 of 3000, all labelled
        served = [e for e in ws.catalog.audit_events(limit=100_000) if e.action == "feedback.add"]
        # 1000 labels per call: two for the window, one per round of the canary
        assert [e.actor for e in served] == ["labeller"] * (2 + result.rollout["rows"] // 1000)
        assert result.rollout["state"] == "promoted"
        promoted = [
            e for e in ws.catalog.audit_events(limit=100_000) if e.action == "rollout.promote"
        ]
        assert [e.actor for e in promoted] == [ws.identity.name]  # the server's stepper
        assert ws.catalog.get_system_version("churn@champion").ref == "churn:v2"
        lineage = ws.lineage("churn:v2")
        reused = {c["name"] for c in lineage["components"] if c["action"] == "reused"}
        assert reused == {"contract_onehot", "region_onehot", "usage_scaled", "account", "usage"}
