"""`Workspace.evaluate` and `regrow evaluate` under a policy: what is recorded, what is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.cli import _app
from regrow.demo import make_window
from regrow.errors import ConfigError, DataError, DataQualityWarning, PolicyError
from regrow.plan.policy import load_policy
from regrow.testing import run_cli

ALL_GATES = """
gates:
  resamples: 200
  checks:
    improvement: {min: 0.0}
    slice_regression: {max: 0.05}
    fairness: {sensitive: contract, max_difference: 0.5, max_increase: null}
    data_quality: {max_out_of_range: 0.5}
    stability: {margin: 0.5}
    calibration: {max_ece: 0.5}
    latency: {max_seconds: 60}
    size: {max_bytes: 100000000}
    coverage: {}
    signature: {}
"""


def build() -> System:
    return System("churn", target="churned", components=[
        Transform("fee_scaled", StandardScaler(), inputs=["monthly_fee"]),
        Member("account", LogisticRegression(), inputs=["tenure_months", "fee_scaled"]),
        Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
        Ensemble("ensemble", weights={"account": 1, "geo": 1}),
    ])  # fmt: skip


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, dict[str, Any]]]:
    """churn:v1 on old rows, churn:v2 with geo refitted on recent rows, a holdout with slices."""
    tmp = tmp_path_factory.mktemp("evaluate")
    later = make_window(1400, start="2026-07-01", days=30, seed=1, expanded=True)
    with Workspace.init(tmp / "ws") as ws:
        old = ws.snapshot(make_window(1200, start="2026-01-01", days=60, seed=0), name="old")
        v1 = ws.train(build(), old, workers=1).version
        v2 = ws.update(v1.ref, ws.snapshot(later.iloc[:700], name="recent"), components=["geo"],
                       workers=1).version  # fmt: skip
        ws.snapshot(later.iloc[700:], name="holdout", slices={"north": "region == 'north'"})
        (tmp / "all.yaml").write_text(ALL_GATES)
        yield ws, {"v1": v1, "v2": v2, "tmp": tmp}


def test_an_evaluation_records_every_gate_the_policy_and_a_report(
    flow: tuple[Workspace, dict[str, Any]],
) -> None:
    ws, f = flow
    record, result = ws.evaluate(f["v2"].ref, "holdout", baseline=f["v1"].ref,
                                 policy=f["tmp"] / "all.yaml")  # fmt: skip
    names = [g.name for g in result.gates]
    assert names == ["improvement", "slice_regression", "fairness", "data_quality", "stability",
                     "calibration", "latency", "size", "coverage", "signature"]  # fmt: skip
    stored = ws.catalog.list_evaluations(candidate_id=f["v2"].id)[0]
    assert stored.id == record.id
    assert [g["name"] for g in stored.results["gates"]] == names
    assert stored.results["policy"] == load_policy(f["tmp"] / "all.yaml").id
    html = ws.store.get(stored.results["report"]).decode()
    assert html.startswith("<!DOCTYPE html>")
    assert "<svg" in html
    assert "http" not in html
    assert "<script" not in html  # self-contained, nothing to fetch
    for name in names:
        assert name in html
    assert (result.verdict == "blessed") == all(g.status == "pass" for g in result.gates)
    stability = next(g for g in result.gates if g.name == "stability")
    assert "training snapshot 'old'" in stability.why  # says which reference rows


def test_with_no_gate_configured_nothing_is_blessed(
    flow: tuple[Workspace, dict[str, Any]],
) -> None:
    ws, f = flow
    (f["tmp"] / "none.yaml").write_text("gates: {checks: {}}\n")
    _, result = ws.evaluate(f["v2"].ref, "holdout", baseline=f["v1"].ref,
                            policy=f["tmp"] / "none.yaml")  # fmt: skip
    assert result.verdict == "none"
    assert result.gates == ()
    assert "no gate is configured" in result.reasons[0]


def test_a_missing_sensitive_column_is_refused_audited_and_records_nothing(
    flow: tuple[Workspace, dict[str, Any]],
) -> None:
    ws, f = flow
    (f["tmp"] / "fair.yaml").write_text("gates: {checks: {fairness: {sensitive: gender}}}\n")
    before = len(ws.catalog.list_evaluations())
    with pytest.raises(DataError, match="no sensitive column 'gender'"):
        ws.evaluate(f["v2"].ref, "holdout", baseline=f["v1"].ref, policy=f["tmp"] / "fair.yaml")
    assert len(ws.catalog.list_evaluations()) == before
    event = ws.catalog.audit_events(limit=1)[0]
    assert event.action == "evaluation.refused"
    assert event.subject == f"version:{f['v2'].ref}"
    assert "gender" in event.payload["refused"]
    ws.catalog.verify_audit()


def test_an_unknown_gate_in_the_policy_is_refused_and_audited(
    flow: tuple[Workspace, dict[str, Any]],
) -> None:
    ws, f = flow
    (f["tmp"] / "typo.yaml").write_text("gates: {checks: {fairnes: {sensitive: region}}}\n")
    before = len(ws.catalog.list_evaluations())
    with pytest.raises(PolicyError, match="did you mean 'fairness'"):
        ws.evaluate(f["v2"].ref, "holdout", baseline=f["v1"].ref, policy=f["tmp"] / "typo.yaml")
    assert len(ws.catalog.list_evaluations()) == before
    assert ws.catalog.audit_events(limit=1)[0].action == "evaluation.refused"


def test_a_policy_file_that_is_not_utf8_is_refused_naming_it(
    flow: tuple[Workspace, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, f = flow
    binary = f["tmp"] / "binary.yaml"
    binary.write_bytes(b"gates:\n  resamples: 200\n\xff\xfe")
    with pytest.raises(
        PolicyError, match=r"binary\.yaml'.*not UTF-8 text \(byte 0xff at offset 24"
    ):
        load_policy(binary)
    before = len(ws.catalog.list_evaluations())
    code, out, err = run_cli(capsys, "evaluate", f["v2"].ref, "--snapshot", "holdout",
                             "--policy", str(binary), "--home", str(ws.home))  # fmt: skip
    assert code == 2, out + err
    assert err.startswith(f"error: cannot read policy file {str(binary)!r}: it is not UTF-8")
    assert "hint: a policy is a YAML file saved as UTF-8" in err
    assert "Traceback" not in out + err
    assert len(ws.catalog.list_evaluations()) == before


def test_the_cli_prints_the_gate_table_and_writes_the_report(
    flow: tuple[Workspace, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, f = flow
    monkeypatch.setattr(_app.out, "width", 200)
    home = str(ws.home)
    out_file = f["tmp"] / "report.html"
    code, out, err = run_cli(capsys, "evaluate", f["v2"].ref, "--snapshot", "holdout",
                             "--baseline", f["v1"].ref, "--policy", str(f["tmp"] / "all.yaml"),
                             "--report", str(out_file), "--home", home)  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    table = lines.index(next(line for line in lines if "gate" in line and "threshold" in line))
    assert table > lines.index(next(line for line in lines if "slice" in line and "rows" in line))
    for name in ("improvement", "fairness", "latency", "signature"):
        assert any(line.lstrip("│ ").startswith(name) for line in lines[table:]), name
    assert "verdict:" in out
    assert out_file.read_text().startswith("<!DOCTYPE html>")
    code, out, err = run_cli(capsys, "evaluate", f["v2"].ref, "--snapshot", "holdout",
                             "--baseline", f["v1"].ref, "--home", home, "--json")  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert [g["name"] for g in data["gates"]] == ["improvement", "slice_regression"]
    assert {"value", "interval", "threshold", "status", "why"} <= set(data["gates"][0])
    assert data["policy"]
    assert data["report"]


def test_the_cli_refuses_a_report_path_in_a_missing_folder_before_evaluating(
    flow: tuple[Workspace, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, f = flow
    before = len(ws.catalog.list_evaluations())
    missing = str(f["tmp"] / "nope" / "r.html")
    code, _, err = run_cli(capsys, "evaluate", f["v2"].ref, "--snapshot", "holdout",
                           "--report", missing, "--home", str(ws.home))  # fmt: skip
    assert code != 0
    assert "does not exist" in err
    assert len(ws.catalog.list_evaluations()) == before


def test_the_cli_refuses_a_folder_as_the_report_file_before_evaluating(
    flow: tuple[Workspace, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the usage error's box: one line
    ws, f = flow
    before = len(ws.catalog.list_evaluations())
    code, _, err = run_cli(capsys, "evaluate", f["v2"].ref, "--snapshot", "holdout",
                           "--report", str(f["tmp"]), "--home", str(ws.home))  # fmt: skip
    assert code == 2
    assert "is a folder" in err
    assert "Traceback" not in err
    assert len(ws.catalog.list_evaluations()) == before


def test_rows_without_a_label_are_left_out_not_scored_as_a_class(
    flow: tuple[Workspace, dict[str, Any]],
) -> None:
    from sklearn.metrics import roc_auc_score

    ws, f = flow
    rows = make_window(600, start="2026-08-01", days=10, seed=5, expanded=True)
    rows["churned"] = rows["churned"].astype(float)
    rows.loc[:39, "churned"] = float("nan")
    with pytest.warns(DataQualityWarning):  # null labels under a new name: stored, and said
        ws.snapshot(rows, name="some-unlabelled")
    _, result = ws.evaluate(f["v2"].ref, "some-unlabelled", baseline=f["v1"].ref)
    labelled = rows[rows["churned"].notna()]
    expected = roc_auc_score(
        labelled["churned"], ws.load(f["v1"].ref).predict_proba(labelled)[:, 1]
    )
    assert result.rows == 560
    assert result.baseline == pytest.approx(expected, abs=1e-6)


def test_a_window_the_versions_cannot_read_is_refused_without_a_traceback(
    flow: tuple[Workspace, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, f = flow
    rows = make_window(400, start="2026-08-01", days=10, seed=6, expanded=True)
    renamed = f["tmp"] / "renamed.csv"
    rows.rename(columns={"network_quality": "net_q"}).to_csv(renamed, index=False)
    words = rows.assign(churned=rows["churned"].map({0: "no", 1: "yes"}))
    labels = f["tmp"] / "words.csv"
    words.to_csv(labels, index=False)
    h = ("--home", str(ws.home))
    for path, message in ((renamed, "'network_quality': the column is missing"),
                          (labels, "are not classes of")):  # fmt: skip
        code, _, err = run_cli(capsys, "snapshot", "create", str(path), "--name", path.stem, *h)
        assert code == 0, err
        code, _, err = run_cli(capsys, "evaluate", f["v2"].ref, "--snapshot", path.stem,
                               "--baseline", f["v1"].ref, *h)  # fmt: skip
        assert code == 2, err
        assert message in err
        assert "Traceback" not in err


def test_explicit_gates_replace_the_policys(flow: tuple[Workspace, dict[str, Any]]) -> None:
    from regrow.evaluate.gates import Coverage

    ws, f = flow
    _, result = ws.evaluate(f["v2"].ref, "holdout", baseline=f["v1"].ref, gates=[Coverage()])
    assert [g.name for g in result.gates] == ["coverage"]
    assert result.verdict == "blessed"


def test_the_candidate_as_its_own_baseline_is_refused(
    flow: tuple[Workspace, dict[str, Any]],
) -> None:
    # it recorded an evaluation with every difference +0.0000 and verdict rejected
    ws, f = flow
    before = len(ws.catalog.list_evaluations(candidate_id=f["v2"].id))
    with pytest.raises(ConfigError, match="is the candidate churn:v2 itself") as info:
        ws.evaluate(f["v2"].ref, "holdout", baseline=f["v2"].ref)
    assert "--baseline" in str(info.value.hint)
    assert len(ws.catalog.list_evaluations(candidate_id=f["v2"].id)) == before


def test_an_evaluation_on_rows_the_candidate_trained_on_says_so(
    flow: tuple[Workspace, dict[str, Any]],
) -> None:
    # it printed "blessed" on v2's own training rows, with nothing to say they were
    ws, f = flow
    _, result = ws.evaluate(f["v2"].ref, "recent", baseline=f["v1"].ref)
    assert any(
        "churn:v2's geo trained on snapshot 'recent': its score here is in-sample" in n
        for n in result.notes
    )
    _, held_out = ws.evaluate(f["v2"].ref, "holdout", baseline=f["v1"].ref)
    assert held_out.notes == ()


def test_an_unknown_metric_hints_the_systems_tasks_metrics() -> None:
    # a regressor's typo listed roc_auc and accuracy, which it then refused
    from regrow.evaluate.metrics import get_metric

    with pytest.raises(ConfigError) as info:
        get_metric("rmes", "regression")
    hint = str(info.value.hint)
    assert "did you mean 'rmse'?" in hint
    assert "roc_auc" not in hint


def test_a_snapshot_without_slices_is_judged_on_the_training_snapshots_slices(
    tmp_path: Any,
) -> None:
    # `evaluate --snapshot holdout` said "slice_regression pass: the evaluation snapshot has
    # no slices" while the model was trained with slices, and `monitor` checks them on a window
    later = make_window(1400, start="2026-07-01", days=30, seed=1, expanded=True)
    with Workspace.init(tmp_path / "ws") as ws:
        old = ws.snapshot(
            make_window(1200, start="2026-01-01", days=60, seed=0),
            name="old",
            slices={"north": "region == 'north'", "monthly": "contract == 'monthly'"},
        )
        v1 = ws.train(build(), old, workers=1).version
        v2 = ws.update(v1.ref, ws.snapshot(later.iloc[:700], name="recent"),
                       components=["geo"], workers=1).version  # fmt: skip
        holdout = ws.snapshot(later.iloc[700:].drop(columns=["region"]), name="holdout")
        (tmp_path / "slices.yaml").write_text(
            "gates:\n  resamples: 200\n  checks:\n    slice_regression: {max: 0.05}\n"
        )
        record, comparison = ws.evaluate(
            v2.ref, holdout, baseline=v1.ref, policy=tmp_path / "slices.yaml"
        )
    (gate,) = comparison.gates
    assert gate.name == "slice_regression"
    assert "no slices" not in gate.why
    assert set(comparison.slices) == {"monthly"}
    # v2 was updated on a window without slices: the slices are its baseline's training's
    assert comparison.notes[0] == (
        "slice monthly comes from the snapshot churn:v1 was trained on (the evaluation "
        "snapshot defines none)"
    )
    assert comparison.notes[1].startswith(
        "slice 'north' (region == 'north') does not apply to the evaluation snapshot ("
    )
    assert record.verdict in ("blessed", "rejected", "inconclusive")
