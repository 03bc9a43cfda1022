"""`regrow monitor` as a product: chunks, estimates, multivariate drift, alerts, reports,
stored reports re-read, and any model's predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.demo import make_window
from regrow.testing import run_cli as run


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("monitor") / "ws"
    system = System("churn", target="churned", components=[
        Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
        Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
        Ensemble("ensemble", weights={"account": 1, "geo": 1}),
    ])  # fmt: skip
    with Workspace.init(path) as ws:
        reference = ws.snapshot(make_window(3000, start="2026-01-01", days=90, seed=0),
                                name="customers", time_column="ts")  # fmt: skip
        ws.train(system, reference)
    later = pd.concat([
        make_window(1000, start="2026-04-01", days=14, seed=1),
        make_window(1000, start="2026-04-15", days=14, seed=2, expanded=True),
    ], ignore_index=True)  # fmt: skip
    later.to_csv(path.parent / "later.csv", index=False)
    return path


def test_chunks_estimates_multivariate_and_a_report(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    html = home.parent / "report.html"
    code, out, err = run(capsys, "monitor", "--version", "churn:v1", "--window",
                         str(home.parent / "later.csv"), "--period", "1w", "--report",
                         str(html), "--home", str(home), "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert [c["rows"] for c in report["chunking"]["chunks"]]
    assert report["chunk_drift"]
    late = [r for r in report["chunk_drift"] if "distance_km" in r["drifted_columns"]]
    assert late
    assert all(r["chunk"] >= "2026-04-13" for r in late)
    assert {m["method"] for m in report["multivariate"]} == {
        "domain_classifier", "pca_reconstruction"}  # fmt: skip
    metrics = {r["metric"] for r in report["estimates"]["rows"]}
    assert {"roc_auc", "accuracy", "f1"} <= metrics
    assert any(r["realised"] is not None for r in report["estimates"]["rows"])
    assert report["summary"]["alerts"] == len(report["alerts"]) > 0
    text = html.read_text()
    assert "<svg" in text
    assert "https://" not in text
    assert "HTML report" in err

    code, out, err = run(capsys, "monitor", "list", "--home", str(home))
    assert code == 0, err
    assert report["report_id"][:12] in out
    code, out, err = run(capsys, "monitor", "show", report["report_id"][:10], "--home",
                         str(home), "--report", str(home.parent / "again.html"))  # fmt: skip
    assert code == 0, err
    assert "multivariate drift" in out
    assert "performance, whole window" in out
    assert (home.parent / "again.html").stat().st_size > 1000


def test_an_alert_threshold_from_the_command_line(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out, err = run(capsys, "monitor", "--version", "churn:v1", "--window",
                         str(home.parent / "later.csv"), "--alert", "roc_auc<0.999",
                         "--home", str(home))  # fmt: skip
    assert code == 0, err
    assert "estimated roc_auc" in out
    assert "policy monitoring.alerts.roc_auc.min" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "x.csv"], "needs --version and --window"),
        (
            ["--version", "churn:v1", "--window", "later", "--chunks", "2", "--chunk-size", "5"],
            "one rule",
        ),
        (
            ["--version", "churn:v1", "--window", "later", "--prediction", "p"],
            "--prediction apply to --reference",
        ),
        (["--version", "churn:v1", "--window", "later", "--alert", "auc=0.8"], "METRIC<VALUE"),
        (
            [
                "--version",
                "churn:v1",
                "--window",
                "later",
                "--alert",
                "auc<0.8",
                "--alert",
                "roc_auc>x",
            ],
            "METRIC<VALUE",
        ),
    ],
)
def test_bad_options_exit_2_with_the_value(
    capsys: pytest.CaptureFixture[str], home: Path, args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "monitor", *args, "--home", str(home))
    assert code == 2, (out, err)
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", [("monitor", "list"), ("plans", "list")])
@pytest.mark.parametrize("limit", ["0", "-1"])
def test_a_list_limit_below_one_is_refused(
    capsys: pytest.CaptureFixture[str], home: Path, command: tuple[str, str], limit: str
) -> None:
    # `monitor list --limit 0` said "no reports yet" of a workspace that held some
    code, _, err = run(capsys, *command, "--limit", limit, "--home", str(home))
    assert code == 2
    assert "--limit" in err


@pytest.mark.parametrize("command", [("plans", "list"), ("aliases",)])
def test_listing_an_unknown_system_names_those_there_are(
    capsys: pytest.CaptureFixture[str], home: Path, command: tuple[str, ...]
) -> None:
    # an empty table and exit 0 hid the typo
    code, _, err = run(capsys, *command, "chrun", "--home", str(home))
    assert code == 2
    assert "unknown system 'chrun'" in err
    assert "did you mean 'churn'?" in err


@pytest.mark.parametrize(
    ("alert", "message"),
    [
        ("rocauc<0.8", "alerts.rocauc: unknown metric; did you mean 'roc_auc'?"),
        ("nosuch<0.8", "alerts.nosuch: unknown metric; known: roc_auc,"),
        ("rmse>0.1", "alert on 'rmse': churn:v1 is a classifier and 'rmse' is not one of"),
    ],
)
def test_an_alert_no_metric_would_meet_is_refused(
    capsys: pytest.CaptureFixture[str], home: Path, alert: str, message: str
) -> None:
    # it was accepted and never fired, silently
    window = str(home.parent / "later.csv")
    code, out, err = run(capsys, "monitor", "--version", "churn:v1", "--window", window,
                         "--alert", alert, "--home", str(home))  # fmt: skip
    assert code == 2, (out, err)
    assert message in err
    assert "Traceback" not in err


def test_show_of_an_unknown_report_names_it(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    code, _, err = run(capsys, "monitor", "show", "nosuchreport", "--home", str(home))
    assert code == 2
    assert "'nosuchreport'" in err
    assert "regrow monitor list" in err


def test_any_models_predictions_from_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)

    def frame(n: int, shift: float) -> pd.DataFrame:
        x = rng.normal(shift, 1, n)
        p = 1 / (1 + np.exp(-x))
        return pd.DataFrame({"x": x, "p": p, "pred": (p >= 0.5).astype(int),
                             "y": (rng.uniform(size=n) < p).astype(int)})  # fmt: skip

    frame(3000, 0).to_parquet(tmp_path / "ref.parquet")
    window = pd.concat([frame(1000, 0), frame(1000, 1)], ignore_index=True)
    window.drop(columns="y").to_csv(tmp_path / "win.csv", index=False)
    code, out, err = run(capsys, "monitor", "--reference", str(tmp_path / "ref.parquet"),
                         "--window", str(tmp_path / "win.csv"), "--prediction", "pred",
                         "--score", "p", "--target", "y", "--chunks", "4", "--positive", "1",
                         "--report", str(tmp_path / "ext.html"))  # fmt: skip
    assert code == 0, err
    assert "chunks: 4 chunks" in out
    assert "performance, whole window" in out
    assert (tmp_path / "ext.html").is_file()
    code, _, err = run(
        capsys,
        "monitor",
        "--reference",
        str(tmp_path / "ref.parquet"),
        "--window",
        str(tmp_path / "win.csv"),
        "--prediction",
        "prd",
    )
    assert code == 2
    assert "did you mean 'pred'" in err
    code, _, err = run(
        capsys,
        "monitor",
        "--reference",
        str(tmp_path / "nope.parquet"),
        "--window",
        str(tmp_path / "win.csv"),
        "--prediction",
        "pred",
    )
    assert code == 2
    assert "no such file" in err
    assert not (tmp_path / "ext2.html").exists()


def _shown(capsys: pytest.CaptureFixture[str], report: dict[str, object]) -> str:
    """The report as `regrow monitor` prints it, on a console wide enough that no cell is cut
    (the width a pipe gets depends on how pytest runs)."""
    from regrow.cli import _app
    from regrow.cli._monitor_show import show_report

    capsys.readouterr()
    width = _app.out.width
    _app.out.width = 250
    try:
        show_report(report)
    finally:
        _app.out.width = width
    return capsys.readouterr().out


def test_an_alert_names_each_chunk_once(capsys: pytest.CaptureFixture[str]) -> None:
    alerts = [{"signal": "drift distance_km", "chunk": c, "why": "drifted"}
              for c in ("rows 567-573", "rows 336-342", "rows 567-573", None, None)]  # fmt: skip
    out = _shown(capsys, {"alerts": alerts})
    assert "drift distance_km [rows 567-573, rows 336-342, whole window]: drifted" in out


def test_a_window_too_small_to_judge_says_so_instead_of_empty_cells(
    capsys: pytest.CaptureFixture[str],
) -> None:
    why = "too few rows to judge: the window has 3 (at least 20 are needed)"
    multivariate = [{"method": m, "value": None, "low": None, "high": None, "threshold": None,
                     "drifted": False, "rows": 3, "why": why, "chunk": None}
                    for m in ("domain_classifier", "pca_reconstruction")]  # fmt: skip
    estimates = {"method": "dle", "rows": [{"chunk": None, "metric": "mse", "value": 7.9,
                 "low": 0.0, "high": 25.0, "reference": 10.6, "realised": None}]}  # fmt: skip
    out = _shown(capsys, {"summary": {"rows": 3, "multivariate_drifted": False},
                          "multivariate": multivariate, "estimates": estimates})  # fmt: skip
    assert out.count("3 rows: too few to tell") == 3  # two checks and the verdict
    assert "[, ]" not in out
    assert "multivariate drift: 3 rows: too few to tell" in out
    mse = next(line for line in out.splitlines() if "│ mse" in line)
    assert [c.strip() for c in mse.split("│")][5] == "-"  # the realised cell is not empty
    chunked = _shown(capsys, {
        "chunking": {"describe": "2 chunks", "chunks": [{"label": "rows 0-2", "rows": 3}]},
        "multivariate": [{**m, "chunk": "rows 0-2"} for m in multivariate],
    })  # fmt: skip
    assert "too few rows / too few rows" in chunked


def test_drift_rows_name_the_reference_they_were_compared_with(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def feature(effect: float, drifted: bool) -> dict[str, object]:
        return {"column": "distance_km", "slice": None, "test": "ks", "effect": effect,
                "adjusted_p_value": 0.01 if drifted else 0.9, "drifted": drifted}  # fmt: skip

    drift = [{"reference": "deliveries (linear)", "features": [feature(0.0278, False)]},
             {"reference": "recent (gbm)", "features": [feature(0.646, True)]}]  # fmt: skip
    out = _shown(capsys, {"drift": drift})
    rows = [line for line in out.splitlines() if "distance_km" in line]
    assert "deliveries (linear)" in rows[0]
    assert "0.0278" in rows[0]
    assert "recent (gbm)" in rows[1]
    assert "drifted" in rows[1]
    single = _shown(capsys, {"drift": [{"reference": None, "features": [feature(0.1, False)]}]})
    assert "reference" not in single


def test_a_window_with_decimal_commas_gets_a_warning_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 400)
    pd.DataFrame({"x": x, "pred": 2 * x, "y": 2 * x + rng.normal(0, 1, 400)}).to_parquet(
        tmp_path / "ref.parquet"
    )
    lines = ["x;pred"] + [f"{v:.3f};{2 * v:.3f}".replace(".", ",") for v in x[:50]]
    (tmp_path / "win.csv").write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "monitor", "--reference", str(tmp_path / "ref.parquet"),
                       "--window", str(tmp_path / "win.csv"), "--prediction", "pred",
                       "--target", "y")  # fmt: skip
    assert code == 0, err
    assert "warning: " in err
    assert "columns 'x', 'pred' hold numbers with a decimal comma" in err


def test_the_alert_column_counts_realised_alerts_and_a_multiclass_matrix_is_summarised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A first user saw '-' in the alert column beside a realised f1 below 'alert at', with the
    alert listed below, and 100 confusion-matrix rows of a 10-class model."""
    row = {"chunk": None, "low": 0.97, "high": 0.99, "reference": 0.995, "threshold": 0.9746}
    rows = [
        {**row, "metric": "f1", "value": 0.987, "realised": 0.9707, "alert": False},
        {**row, "metric": "accuracy", "value": 0.96, "realised": 0.99, "alert": True},
    ]
    rows += [{**row, "metric": f"confusion_matrix[{i},{j}]", "value": 0.01, "realised": 0.01}
             for i in range(10) for j in range(10)]  # fmt: skip
    alerts = [{"signal": "realised f1", "chunk": None, "why": "realised f1 0.9707 is below"}]
    out = _shown(capsys, {"estimates": {"method": "cbpe", "rows": rows}, "alerts": alerts})

    def cells(name: str) -> list[str]:
        line = next(line for line in out.splitlines() if f"│ {name} " in line)
        return [c.strip() for c in line.split("│")]

    assert cells("f1")[7] == "realised"
    assert cells("accuracy")[7] == "estimate"
    assert "confusion_matrix[" not in out.split("the confusion matrix")[0]
    assert "the confusion matrix's 100 cells are estimated too" in out
    warnings = ["realised f1 0.97 is outside its band"] + [
        f"realised confusion_matrix[{i},{i}] 0.1 is outside its band" for i in range(10)
    ]
    calibration = {"calibration_drift": True, "warnings": warnings}
    estimates = {"method": "cbpe", "rows": rows[:2]}
    shown = _shown(capsys, {"estimates": estimates, "calibration": calibration})
    assert "the realised f1, 10 confusion-matrix cells fall outside" in shown


def test_a_calibration_alert_on_an_in_sample_reference_names_that_cause_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # On a window like the training data, an overfit model's in-sample reference read as
    # "a concept shift" alone.
    estimates = {"method": "cbpe", "rows": [{"chunk": None, "metric": "roc_auc", "value": 0.9,
                 "low": 0.88, "high": 0.92, "reference": 0.9, "realised": 0.65}]}  # fmt: skip
    calibration = {"calibration_drift": True,
                   "warnings": ["realised roc_auc 0.65 is outside [0.88, 0.92]"]}  # fmt: skip
    note = "performance is estimated (CBPE) from 4,000 rows of the training snapshot: in-sample"
    shown = {"estimates": estimates, "calibration": calibration}
    out = " ".join(_shown(capsys, {**shown, "quality": {"notes": [note]}}).split())
    assert "a concept shift, which estimates without labels cannot see; or, since the " in out
    assert "`regrow evaluate` on held-out rows" in out
    out = " ".join(_shown(capsys, shown).split())
    assert "cannot see)" in out
    assert "training data" not in out


def test_a_renamed_column_gets_the_hint_that_bridges_it(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    # the monitor said "'distance_km': missing" and "'distance': ignored", and only a plan's
    # refusal named the adapters that bridge a rename
    window = make_window(800, start="2026-04-01", days=14, seed=3).rename(
        columns={"distance_km": "distance"}
    )
    window.to_parquet(tmp_path / "renamed.parquet")
    code, out, err = run(capsys, "monitor", "--version", "churn:v1", "--window",
                         str(tmp_path / "renamed.parquet"), "--home", str(home))  # fmt: skip
    assert code == 0, err
    assert (
        "hint: 'distance_km' is missing and 'distance' is new: renamed upstream? "
        "`regrow adapters propose SNAPSHOT --system SYSTEM`" in " ".join(out.split())
    )
