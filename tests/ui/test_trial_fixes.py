"""What a user trial of the dashboard found, on the demo's workspace: a run of holds read with
the evidence of the hold whose reason it shows, a promoted candidate's share, the feature
page's JSON link, run id prefixes, the host hint of `regrow ui`, unknown systems."""

from __future__ import annotations

import errno
import socket
import warnings
from pathlib import Path
from typing import Any

import pytest

from regrow import Workspace
from regrow.testing import run_cli

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*install `httpx2`", category=UserWarning)
    from fastapi.testclient import TestClient

Demo = Any  # conftest.Demo: test modules cannot import conftest (--import-mode=importlib)


def _get(client: TestClient, url: str) -> Any:
    answer = client.get(url)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _promoted(client: TestClient) -> dict[str, Any]:
    listed = _get(client, "/api/ui/rollouts")["rollouts"]
    done = next(r for r in listed if r["state"] == "promoted")
    return _get(client, f"/api/ui/rollouts/{done['id']}")  # type: ignore[no-any-return]


# -- 1. a run of holds -------------------------------------------------------------------------


def test_a_run_of_holds_shows_the_evidence_of_its_last_hold(client: TestClient) -> None:
    data = _promoted(client)
    history, merged = data["history"], [s for s in data["states"] if s["action"] == "holds"]
    assert merged
    for row in merged:
        first = next(h for h in history if h["n"] == row["n"])
        last = history[row["n"] + row["count"] - 2]
        assert [h["action"] for h in history[row["n"] - 1 : row["n"] + row["count"] - 1]] == [
            "hold"
        ] * row["count"]
        assert (row["at"], row["until"], row["from"]) == (first["at"], last["at"], first["from"])
        for key in ("reason", "state", "n_candidate", "n_stable", "difference", "low", "high",
                    "decision", "candidate_loss", "stable_loss", "share"):  # fmt: skip
            assert row[key] == last[key], key


def _hold(n_candidate: int, n_stable: int, difference: float, reason: str) -> Any:
    """An audit event of a hold, as the rollout machine writes it."""
    from types import SimpleNamespace

    evidence = {"decision": "continue", "difference": difference, "lower": None, "upper": None,
                "n_candidate": n_candidate, "n_stable": n_stable}  # fmt: skip
    payload = {"from": "progressing", "state": "progressing", "step": 0, "share": 0.25,
               "reason": reason, "evidence": evidence}  # fmt: skip
    return SimpleNamespace(at="2026-12-01T10:00:00", actor="watch", action="rollout.hold",
                           payload=payload)  # fmt: skip


def test_a_difference_without_labelled_requests_on_both_lanes_is_a_dash(
    client: TestClient,
) -> None:
    from regrow.ui.pages import DASH, _environment
    from regrow.ui.rollouts import _steps, states

    steps = _steps([_hold(0, 0, 0.0, "0 of 150"), _hold(64, 132, 0.01, "64 of 150")])
    assert [s["difference"] for s in steps] == [None, 0.01]
    (merged,) = states(steps)  # the trial's row: the first hold's 0/0, the last's reason
    assert (merged["count"], merged["reason"], merged["n_candidate"], merged["n_stable"],
            merged["difference"]) == (2, "64 of 150", 64, 132, 0.01)  # fmt: skip
    data = {**_promoted(client), "states": states(steps[:1])}
    html = _environment().get_template("rollout.html").render(data=data)
    cells = html.split('<table id="history">', 1)[1].split("<tbody>", 1)[1].split("<td")
    assert cells[8] == f' class="n">{DASH}</td>'  # the difference
    assert cells[10] == ' class="n">0/0</td>'  # n candidate/stable


# -- 2. a promoted candidate's share -----------------------------------------------------------


def test_a_promoted_candidate_serves_all_traffic(client: TestClient) -> None:
    data = _promoted(client)
    assert data["share"] == 1.0
    promote = next(h for h in data["history"] if h["action"] == "promote")
    assert promote["share"] == 1.0
    listed = _get(client, "/api/ui/rollouts")["rollouts"]
    assert next(r for r in listed if r["id"] == data["id"])["share"] == 1.0
    page = client.get(f"/ui/rollouts/{data['id']}").text
    assert "promoted: the candidate serves all traffic (100%)" in page
    assert "candidate share 0%" not in page


def test_rollout_history_shows_a_promoted_candidate_at_100_percent(
    client: TestClient, demo: Demo, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    data = _promoted(client)
    code, out, _ = run_cli(capsys, "rollout", "history", data["id"], "--home", str(demo.home))
    assert code == 0
    promote = next(line for line in out.splitlines() if " promote " in line)
    assert "100%" in promote
    assert " 0% " not in promote


# -- 3. the feature page's JSON link -----------------------------------------------------------


def test_the_feature_page_links_the_json_of_the_report_it_shows(
    client: TestClient, demo: Demo
) -> None:
    url = f"/ui/monitoring/churn/features/distance_km?report={demo.drifted_report}"
    page = client.get(url)
    assert page.status_code == 200
    api = f"/api/ui/monitoring/churn/features/distance_km?report={demo.drifted_report}"
    assert f'href="{api}"' in page.text
    assert _get(client, api)["report"] == demo.drifted_report
    plain = client.get("/ui/monitoring/churn/features/distance_km").text
    assert 'href="/api/ui/monitoring/churn/features/distance_km"' in plain


# -- 4. run id prefixes ------------------------------------------------------------------------


def test_a_run_page_takes_a_unique_id_prefix(client: TestClient, demo: Demo) -> None:
    short = demo.run[:8]  # as `regrow costs` prints it
    assert _get(client, f"/api/ui/runs/{short}")["id"] == demo.run
    page = client.get(f"/ui/runs/{short}")
    assert page.status_code == 200
    assert f'data-poll="/api/ui/runs/{demo.run}"' in page.text  # polls by the whole id


def test_an_unknown_run_hints_where_the_runs_are_listed(client: TestClient) -> None:
    for ref in ("ffffffff", "zz"):
        answer = client.get(f"/api/ui/runs/{ref}")
        assert answer.status_code == 404
        error = answer.json()["error"]
        assert repr(ref) in error
        assert "regrow costs --system" in error
        assert "list_runs()" not in error
    page = client.get("/ui/runs/ffffffff")
    assert page.status_code == 404
    assert "/ui/plans" in page.text


def test_an_ambiguous_run_prefix_lists_its_matches(demo_copy: Demo) -> None:
    import sqlite3

    from regrow.ui import create_ui_app

    with Workspace.open(demo_copy.home) as ws:
        real = ws.catalog.list_runs(limit=1)[0]
    twin = real.id[:6] + "0" * (len(real.id) - 6)
    with sqlite3.connect(demo_copy.home / "catalog.db") as db:  # a run sharing its prefix
        columns = [row[1] for row in db.execute("PRAGMA table_info(runs)")]
        picked = ", ".join("?" if c == "id" else c for c in columns)
        db.execute(
            f"INSERT INTO runs ({', '.join(columns)}) SELECT {picked} FROM runs WHERE id = ?",
            (twin, real.id),
        )
    with TestClient(create_ui_app(demo_copy.home)) as client:
        answer = client.get(f"/api/ui/runs/{real.id[:6]}")
    assert answer.status_code == 404, answer.text
    hint = str(answer.json())
    assert "ambiguous, it matches" in hint
    assert real.id[:12] in hint
    assert twin[:12] in hint


# -- 5. `regrow ui --host` ---------------------------------------------------------------------


def test_regrow_ui_on_an_address_not_of_this_machine_hints_at_host(
    demo: Demo, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    with (
        socket.socket() as probe,
        pytest.raises(OSError, match="assign requested address") as refused,
    ):
        probe.bind(("192.0.2.1", 0))  # TEST-NET-1: no machine has it
    assert refused.value.errno == errno.EADDRNOTAVAIL
    code, _, err = run_cli(
        capsys, "ui", "--home", str(demo.home), "--host", "192.0.2.1", "--port", "0"
    )
    assert code == 2
    assert "cannot listen on 192.0.2.1:0" in err
    assert "--host" in err
    assert "--port" not in err


def test_regrow_ui_on_a_port_in_use_hints_at_port(
    demo: Demo, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_cli(capsys, "ui", "--home", str(demo.home), "--port", str(port))
    assert code == 2
    assert "choose another --port" in err


# -- 6. unknown systems ------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["plans", "rollouts"])
def test_a_list_of_an_unknown_system_answers_404_as_monitoring_does(
    client: TestClient, page: str
) -> None:
    for url in (f"/api/ui/{page}?system=chrun", "/api/ui/monitoring/chrun"):
        answer = client.get(url)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"] == (
            "unknown system 'chrun'; no system is named 'chrun'; did you mean 'churn'?"
        )
    assert client.get(f"/ui/{page}?system=chrun").status_code == 404
    assert _get(client, f"/api/ui/{page}?system=churn")[page]


def test_an_empty_workspace_says_there_are_no_systems_yet(tmp_path: Path) -> None:
    from regrow.ui import create_ui_app

    Workspace.init(tmp_path / "empty").close()
    with TestClient(create_ui_app(tmp_path / "empty")) as client:
        for url in ("/api/ui/monitoring/churn", "/api/ui/plans?system=churn",
                    "/api/ui/rollouts?system=churn"):  # fmt: skip
            answer = client.get(url)
            assert answer.status_code == 404
            error = answer.json()["error"]
            assert "there are no systems yet: train one first" in error
            assert "[]" not in error
        assert _get(client, "/api/ui/plans") == {"plans": [], "runs": []}


def test_the_openapi_document_lists_404_for_the_lists_by_system(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/ui/plans", "/api/ui/rollouts"):
        assert "404" in paths[path]["get"]["responses"]
