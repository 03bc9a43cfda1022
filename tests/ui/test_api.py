"""The dashboard's JSON API (``/api/ui``) on the demo's workspace, through FastAPI's TestClient:
what each page shows, the errors, the role checks of the rollout moves, and the OpenAPI
document (of ``regrow ui``'s app and of ``regrow serve``'s, which mounts the same dashboard)."""

from __future__ import annotations

import warnings
from typing import Any

from regrow import Workspace

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*install `httpx2`", category=UserWarning)
    from fastapi.testclient import TestClient

Demo = Any  # conftest.Demo: test modules cannot import conftest (--import-mode=importlib)


def _get(client: TestClient, url: str) -> Any:
    answer = client.get(url)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_overview_lists_the_system_its_champion_verdicts_and_runs_with_cost(
    client: TestClient,
) -> None:
    data = _get(client, "/api/ui/overview")
    (churn,) = data["systems"]
    assert churn["name"] == "churn"
    assert {(a["alias"], a["version"]) for a in churn["aliases"]} == {("champion", "churn:v2")}
    assert [v["version"] for v in churn["versions"]][-1] == "churn:v1"
    assert [r["candidate"] for r in churn["rollouts"]] == ["churn:v3"]  # the one under way
    verdicts = [m for m in churn["monitor"] if m["drifted"]]
    assert verdicts
    assert set(verdicts[0]["drifted"]) == {"distance_km", "network_quality"}
    assert verdicts[0]["candidates"] == ["geo"]
    plan_runs = [r for r in churn["runs"] if r["kind"] == "plan"]
    assert plan_runs[0]["trained"] == ["geo", "ensemble"]
    assert plan_runs[0]["cpu_seconds"] > 0


def test_monitoring_drills_down_to_the_drifted_features_per_slice_and_attribution(
    client: TestClient, demo: Demo
) -> None:
    data = _get(client, f"/api/ui/monitoring/churn?report={demo.drifted_report}")
    report = data["report"]
    assert report["id"] == demo.drifted_report
    assert set(report["drifted"]) == {"distance_km", "network_quality"}
    assert {f["column"] for f in report["features"] if f["drifted"] and f["slice"] is None} == {
        "distance_km",
        "network_quality",
    }
    assert report["slices"], "the demo's snapshots have slices"
    assert {f["slice"] for f in report["features"]} >= {None, *report["slices"]}
    assert "roc_auc" in report["metrics"]
    geo = next(i for i in report["impacts"] if i["component"] == "geo")
    assert geo["candidate"] is True
    assert geo["interval"][0] > 0
    # the newest report (of churn:v3) drifted nowhere, but the drift stays on the page
    newest = _get(client, "/api/ui/monitoring/churn")
    assert newest["report"]["id"] == newest["reports"][0]["id"]
    assert {"distance_km", "network_quality"} <= {
        f["column"] for f in newest["report"]["drifted_ever"]
    }


def test_a_feature_has_its_distributions_and_its_effect_over_time(
    client: TestClient, demo: Demo
) -> None:
    data = _get(
        client, f"/api/ui/monitoring/churn/features/distance_km?report={demo.drifted_report}"
    )
    assert data["drifted"] is True
    assert data["distribution"]["kind"] == "numeric"
    assert len(data["distribution"]["edges"]) == len(data["distribution"]["reference"]) + 1
    whole = [s for s in data["series"] if s["slice"] is None and s["test"] == "wasserstein"]
    (series,) = whole
    assert any(p["drifted"] for p in series["points"])
    assert all(p["low"] <= p["value"] <= p["high"] for p in series["points"])


def test_plans_show_actions_with_reasons_and_expected_vs_actual(
    client: TestClient, demo: Demo
) -> None:
    listed = _get(client, "/api/ui/plans")
    assert demo.plan in {p["id"] for p in listed["plans"]}
    plan = _get(client, f"/api/ui/plans/{demo.plan}")
    (action,) = plan["actions"]
    assert (action["kind"], action["component"]) == ("refit", "geo")
    assert "residual probe" in action["reason"]
    assert action["gain"]["low"] <= action["gain"]["value"] <= action["gain"]["high"]
    assert action["estimated_cpu_seconds"] > 0
    assert action["actual_cpu_seconds"] > 0
    assert plan["experiment"]["actual"]["verdict"] == "blessed"
    assert plan["result"] == "churn:v2"
    run = _get(client, f"/api/ui/runs/{demo.run}")
    assert run["done"] is True
    assert run["status"] == "succeeded"
    assert [c["component"] for c in run["fitted"]] == ["geo", "ensemble"]
    assert "account" in run["reused"]


def test_a_version_is_a_graph_of_components_with_state_and_weights(client: TestClient) -> None:
    data = _get(client, "/api/ui/versions/churn:v2")
    by_name = {c["name"]: c for c in data["components"]}
    assert set(by_name) == {"contract_onehot", "region_onehot", "usage_scaled", "account",
                            "usage", "geo", "ensemble"}  # fmt: skip
    assert by_name["ensemble"]["upstream"] == ["account", "usage", "geo"]
    assert (
        by_name["ensemble"]["layer"] > by_name["geo"]["layer"] > by_name["region_onehot"]["layer"]
    )
    assert all(c["fresh"] is not None for c in data["components"])
    assert set(data["weights"]) == {"account", "usage", "geo"}
    assert {c["name"] for c in data["components"] if c["new"]} == {"geo", "ensemble"}


def test_rollouts_show_transitions_with_share_and_evidence(client: TestClient) -> None:
    listed = _get(client, "/api/ui/rollouts")["rollouts"]
    done = next(r for r in listed if r["state"] == "promoted")
    data = _get(client, f"/api/ui/rollouts/{done['id']}")
    actions = [h["action"] for h in data["history"]]
    assert actions[:2] == ["start", "begin"]
    assert "promote" in actions
    # an interval is unbounded (None) until the confidence sequence has data on both lanes
    analysed = [h for h in data["history"] if h["n_candidate"] and h["low"] is not None]
    assert analysed
    assert all(h["low"] <= h["difference"] <= h["high"] for h in analysed)
    assert any(s["action"] == "holds" for s in data["states"])  # holds in a row: one line
    assert data["actions"] == []  # a finished rollout has no buttons


def test_rollout_moves_need_a_token_and_the_operator_role(demo_copy: Demo) -> None:
    from regrow.ui import create_ui_app

    url = f"/api/ui/rollouts/{demo_copy.rollout}"
    with TestClient(create_ui_app(demo_copy.home)) as client:
        anonymous = client.post(f"{url}/pause")
        assert anonymous.status_code == 401
        assert "needs an API token" in anonymous.json()["error"]
        viewer = client.post(
            f"{url}/pause", headers={"authorization": f"Bearer {demo_copy.viewer}"}
        )
        assert viewer.status_code == 403
        assert "'viv' (role viewer) may not pause a rollout" in viewer.json()["error"]
        assert client.get(url).json()["state"] == "progressing"
        ops = {"authorization": f"Bearer {demo_copy.operator}"}
        paused = client.post(f"{url}/pause?reason=looking", headers=ops)
        assert paused.status_code == 200, paused.text
        assert paused.json()["state"] == "paused"
        unknown = client.post(f"{url}/explode", headers=ops)
        assert unknown.status_code == 400
        assert "unknown rollout action" in unknown.json()["error"]
        # a move that does not exist is said so without a token (it said one was needed)
        anonymous = client.post(f"{url}/explode")
        assert anonymous.status_code == 400
        assert "unknown rollout action 'explode'" in anonymous.json()["error"]
        assert client.post(f"{url}/resume", headers=ops).json()["state"] == "progressing"
        assert client.post(f"{url}/abort", headers=ops).status_code == 200
        again = client.post(f"{url}/pause", headers=ops)
        assert again.status_code == 409, again.text
    with Workspace.open(demo_copy.home) as ws:
        moves = [e for e in ws.catalog.audit_events(limit=50) if e.subject.startswith("rollout:")]
        assert {"ops"} <= {e.actor for e in moves}
        denied = [e for e in ws.catalog.audit_events(limit=50) if e.action == "auth.denied"]
        assert denied
        assert denied[0].actor == "viv"


def test_governance_lineage_and_audit(client: TestClient) -> None:
    gov = _get(client, "/api/ui/governance")
    blessed = next(e for e in gov["evaluations"] if e["candidate"] == "churn:v2")
    assert blessed["verdict"] == "blessed"
    assert {g["name"] for g in blessed["gates"]} == {"improvement", "slice_regression"}
    assert {a["approver"] for a in gov["approvals"]} == {"reviewer"}
    assert "churn:v3" in {p["version"] for p in gov["pending"]}
    lineage = _get(client, "/api/ui/lineage/churn:v2")
    assert [p["version"] for p in lineage["parents"]] == ["churn:v1"]
    assert lineage["evaluations"][0]["verdict"] == "blessed"
    assert {c["name"] for c in lineage["components"] if c["action"] == "trained"} == {
        "geo",
        "ensemble",
    }
    audit = _get(client, "/api/ui/audit?action=rollout.promote")
    assert audit["verified"]["ok"] is True
    assert audit["verified"]["events"] > 0
    assert audit["events"]
    assert {e["action"] for e in audit["events"]} == {"rollout.promote"}
    assert client.get("/api/ui/audit?limit=0").status_code == 400


def test_unknown_things_answer_404_with_a_hint(client: TestClient) -> None:
    for url in ("/api/ui/versions/churn:v99", "/api/ui/monitoring/nope",
                "/api/ui/plans/zzzzzzzz", "/api/ui/runs/zzzzzzzz", "/api/ui/rollouts/zzzzzzzz",
                "/api/ui/monitoring/churn/features/nope", "/api/ui/lineage/nope:v1"):  # fmt: skip
        answer = client.get(url)
        assert answer.status_code == 404, (url, answer.text)
        assert answer.json()["error"]
    page = client.get("/ui/versions/churn:v99")
    assert page.status_code == 404
    assert "churn:v99" in page.text


def test_the_openapi_document_lists_the_json_api(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    paths = {p for p in doc["paths"] if p.startswith("/api/ui")}
    assert {"/api/ui/overview", "/api/ui/monitoring/{system}", "/api/ui/plans/{plan_id}",
            "/api/ui/rollouts/{rollout_id}/{action}", "/api/ui/audit"} <= paths  # fmt: skip
    assert not any(p.startswith("/ui") for p in doc["paths"])  # pages are not API
    move = doc["paths"]["/api/ui/rollouts/{rollout_id}/{action}"]["post"]
    assert {"401", "403", "409"} <= set(move["responses"])


def test_regrow_serve_mounts_the_same_dashboard(demo_copy: Demo) -> None:
    from regrow.serve.app import create_app

    with TestClient(create_app(demo_copy.home, load="later")) as client:
        assert client.get("/api/ui/overview").json()["systems"][0]["name"] == "churn"
        assert "/api/ui/overview" in client.get("/openapi.json").json()["paths"]
        page = client.get("/ui")
        assert page.status_code == 200
        assert "churn@champion" in page.text


def test_every_page_and_plot_renders(client: TestClient, demo: Demo) -> None:
    urls = ["/ui", "/ui/versions/churn:v2", "/ui/monitoring/churn",
            f"/ui/monitoring/churn?report={demo.drifted_report}",
            f"/ui/monitoring/churn/features/distance_km?report={demo.drifted_report}",
            "/ui/plans", f"/ui/plans/{demo.plan}", f"/ui/runs/{demo.run}", "/ui/rollouts",
            f"/ui/rollouts/{demo.rollout}", "/ui/governance", "/ui/lineage/churn:v2",
            "/ui/audit?action=rollout.", "/ui/static/ui.js", "/ui/static/ui.css"]  # fmt: skip
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 200, (url, answer.text[:300])
    svg = client.get(f"/ui/plots/distribution/churn/distance_km.svg?report={demo.drifted_report}")
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg")
    assert client.get("/ui/static/nope.js").status_code == 404


def test_the_metric_over_time_and_its_forecast_against_the_sla(demo_copy: Demo) -> None:
    from regrow import Workspace
    from regrow.plan.policy import Policy
    from regrow.ui import create_ui_app

    with TestClient(create_ui_app(demo_copy.home)) as client:
        plain = _get(client, "/api/ui/monitoring/churn")["over_time"]
    assert plain["metric"] == "roc_auc"  # no SLA: the newest estimated report's first metric
    assert plain["series"]
    assert all(0 <= p["value"] <= 1 for p in plain["series"])
    assert plain["forecast"] is None  # no threshold to forecast against
    body = Policy.default().to_dict()
    body["watch"]["sla"] = {"roc_auc": {"min": 0.8}}
    with Workspace.open(demo_copy.home) as ws:
        ws.set_policy(Policy.from_dict(body))
    with TestClient(create_ui_app(demo_copy.home)) as client:
        data = _get(client, "/api/ui/monitoring/churn")
        svg = client.get(f"/ui/plots/over-time/churn.svg?upto={data['reports'][0]['id']}")
        page = client.get("/ui/monitoring/churn")
    timed = data["over_time"]
    assert (timed["metric"], timed["threshold"], timed["rule"]) == ("roc_auc", 0.8, "sla")
    assert timed["forecast"]["n_points"] == len(timed["series"])
    if timed["forecast"]["probability"] is not None:
        assert 0 <= timed["forecast"]["lower"] <= timed["forecast"]["upper"] <= 1
    assert svg.status_code == 200
    assert svg.text.startswith("<svg")
    assert "roc_auc over time" in page.text


def test_a_running_run_is_shown_live_until_it_finishes(demo_copy: Demo) -> None:
    from regrow.ui import create_ui_app

    with Workspace.open(demo_copy.home) as ws:
        run = ws.catalog.start_run(
            system="churn", kind="plan", seed=0, environment={}, params={"actions": ["refit geo"]},
            lease_seconds=600, holder={"host": "test", "pid": 1},
        )  # fmt: skip
    with TestClient(create_ui_app(demo_copy.home)) as client:
        live = _get(client, f"/api/ui/runs/{run.id}")
        page = client.get(f"/ui/runs/{run.id}")
        assert (live["status"], live["done"], live["planned"]) == ("running", False, ["refit geo"])
        assert f'data-poll="/api/ui/runs/{run.id}" data-done="no"' in page.text  # ui.js polls
        with Workspace.open(demo_copy.home) as ws:
            ws.catalog.finish_run(run.id, status="succeeded", summary={"trained": []})
        finished = _get(client, f"/api/ui/runs/{run.id}")
    assert (finished["status"], finished["done"]) == ("succeeded", True)


def test_the_overview_shows_a_cycle_no_watcher_holds_as_interrupted_and_why(
    demo_copy: Demo,
) -> None:
    """A trial: a watch cycle stopped by Ctrl-C after its window step showed as `running
    (window)` on the overview, while `regrow watch --status` said it was interrupted and
    resumes; a failed one showed its step, not why it failed."""
    from regrow.ui import create_ui_app

    with Workspace.open(demo_copy.home) as ws:
        lease = ws.catalog.watches.acquire("churn", holder="trial", seconds=60)
        cycle = ws.catalog.watches.start_cycle(
            "churn", "champion", holder=lease.holder, window_key="day-1"
        )
        ws.catalog.watches.advance(cycle.id, holder=lease.holder, step="window")
        ws.catalog.watches.release("churn", holder=lease.holder)  # the Ctrl-C's release
    with TestClient(create_ui_app(demo_copy.home)) as client:
        (churn,) = _get(client, "/api/ui/overview")["systems"]
        last = churn["last_cycle"]
        assert (last["number"], last["state"], last["shown"]) == (1, "running", "interrupted")
        assert last["why"] == "resumes on the next `regrow watch` (stopped after step window)"
        page = client.get("/ui").text
    assert "last cycle #1: interrupted — resumes on the next" in page


def test_the_lineage_page_shows_the_adapters_the_version_reads_through(
    client: TestClient,
) -> None:
    """A trial: `regrow lineage churn:v3` printed the demo's rename adapter and the JSON had
    it, but the page showed nothing of it."""
    data = _get(client, "/api/ui/lineage/churn:v3")
    assert data["adapters"], "the demo bridges a renamed column in churn:v3"
    (rename,) = data["adapters"]["adapters"]
    page = client.get("/ui/lineage/churn:v3")
    assert page.status_code == 200
    assert "<h2>Adapters</h2>" in page.text
    assert "rename" in page.text
    assert ", ".join(rename["read_by"]) in page.text
