"""A metric's history read back from the monitor reports a workspace stored
(regrow.forecast.points.series_from_catalog)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.demo import make_window
from regrow.errors import ConfigError, NotFound
from regrow.forecast import forecast, series_from_catalog
from regrow.plan.policy import Policy
from regrow.testing import run_cli


def build() -> System:
    return System(
        "churn",
        target="churned",
        components=[
            Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
            Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
            Ensemble("ensemble", weights={"account": 1, "geo": 1}),
        ],
    )


@pytest.fixture
def forecast_command() -> Iterator[None]:
    """`regrow forecast` on the app: importing its module registers it. Until regrow.cli
    imports the module itself, the command is taken off again after the test, so that the
    other CLI tests see the app as it ships."""
    from regrow.cli._app import app

    shipped = list(app.registered_commands)
    from regrow.cli import forecast as module

    if not any(c.callback is module.forecast for c in app.registered_commands):
        app.command()(module.forecast)
    yield
    app.registered_commands[:] = shipped


def test_the_series_is_one_point_per_window_in_time_order_realised_winning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], forecast_command: None
) -> None:
    home = tmp_path / "ws"
    with Workspace.init(home) as ws:
        ref = make_window(2000, start="2026-01-01", days=90, seed=0)
        reference = ws.snapshot(
            ref, name="ref", time_column="ts", slices={"monthly": "contract == 'monthly'"}
        )
        version = ws.train(build(), reference).version
        weeks = [
            make_window(600, start=f"2026-04-{1 + 7 * i:02d}", days=7, seed=10 + i)
            for i in range(3)
        ]
        assert series_from_catalog(ws.catalog, "churn", "roc_auc") == []
        # Monitored out of time order: the series follows the windows' time, not the reports'.
        reports = {i: ws.monitor(version.ref, weeks[i]).record for i in (1, 0)}
        unlabelled = ws.monitor(version.ref, weeks[2].drop(columns=["churned"])).record
        assert unlabelled is not None

        before = series_from_catalog(ws.catalog, "churn", "roc_auc")
        assert [p.source for p in before] == ["realised"] * 2 + ["estimated"]
        assert [p.report for p in before[:2]] == [reports[i].id for i in range(2)]  # type: ignore[union-attr]
        estimate = next(
            r
            for r in unlabelled.report["estimates"]["rows"]
            if r["metric"] == "roc_auc" and r["chunk"] is None
        )
        last = before[-1]
        assert (last.value, last.lower, last.upper) == (
            estimate["value"], estimate["low"], estimate["high"],
        )  # fmt: skip
        assert last.rows == 600
        assert last.version == "churn:v1"
        assert [p.at for p in before] == sorted(p.at for p in before)
        assert before[0].at.date().isoformat() == "2026-04-07"  # the window's newest row

        # The labels of week 2 arrive: its realised value replaces the estimate.
        labelled = ws.monitor(version.ref, weeks[2]).record
        assert labelled is not None
        after = series_from_catalog(ws.catalog, "churn", "roc_auc")
        assert len(after) == 3
        assert after[-1].source == "realised"
        system_row = next(
            r
            for r in labelled.report["performance"]["rows"]
            if r["kind"] == "system" and r["scope"] == "all"
        )
        assert after[-1].value == system_row["value"]
        assert after[-1].report == labelled.id

        geo = series_from_catalog(ws.catalog, "churn", "roc_auc", member="geo")
        assert len(geo) == 3
        assert {p.source for p in geo} == {"realised"}
        assert [p.value for p in geo] != [p.value for p in after]
        monthly = series_from_catalog(ws.catalog, "churn", "roc_auc", slice="monthly")
        assert len(monthly) == 3
        assert all(p.rows < 600 for p in monthly)
        recent = series_from_catalog(ws.catalog, "churn", "roc_auc", since="2026-04-10")
        assert [p.at for p in recent] == [p.at for p in after[1:]]

        f = forecast(after, threshold=0.5, direction="below", horizon=3)
        assert f.n_points == 3
        assert f.probability is not None
        assert f.probability < 0.05

        with pytest.raises(ConfigError, match="no monitor report holds metric 'auc'") as info:
            series_from_catalog(ws.catalog, "churn", "auc")
        assert "roc_auc" in str(info.value.hint)
        with pytest.raises(ConfigError, match="member 'nope'") as info:
            series_from_catalog(ws.catalog, "churn", "roc_auc", member="nope")
        assert "geo" in str(info.value.hint)
        with pytest.raises(ConfigError, match="for member 'geo'"):
            series_from_catalog(ws.catalog, "churn", "f1", member="geo")
        with pytest.raises(NotFound, match="unknown system 'nochurn'") as found:
            series_from_catalog(ws.catalog, "nochurn", "roc_auc")
        assert "did you mean 'churn'?" in str(found.value.hint)
        with pytest.raises(ConfigError, match="unknown slice 'monthy'") as info:
            series_from_catalog(ws.catalog, "churn", "roc_auc", slice="monthy")
        assert info.value.hint == "did you mean 'monthly'? the slices are ['monthly']"

    args = ("forecast", "churn", "--metric", "roc_auc", "--home", str(home))
    code, out, _ = run_cli(capsys, *args, "--threshold", "0.5", "--horizon", "3", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["direction"] == "below"
    assert data["n_points"] == 3
    assert len(data["series"]) == 3
    assert data["probability"] == f.probability
    code, out, _ = run_cli(capsys, *args, "--threshold", "0.5", "--member", "geo")
    assert code == 0
    assert "churn member geo: roc_auc over 3 window(s)" in out
    assert "P(roc_auc < 0.5 within 14 windows) = " in out
    code, out, _ = run_cli(capsys, *args, "--threshold", "0.99")
    assert code == 0  # every reading is below 0.99: said first, not left to a note
    assert out.splitlines()[4].startswith("roc_auc is already below the SLA 0.99: ")
    assert "note: the metric is already" not in out
    assert "note: the newest 3 reading(s) are below 0.99" in out
    assert "median first crossing" not in out  # a crossing that happened is none to come
    code, _, err = run_cli(capsys, "forecast", "chrun", "--home", str(home))
    assert code == 2  # the system is named before the policy's SLA (it has none) is missed
    assert "unknown system 'chrun'" in err
    assert "did you mean 'churn'?" in err
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert "no --threshold given" in err
    assert "hint:" in err
    assert "Traceback" not in err
    # the SLA can come from a policy file; a policy file that is not there is named
    body = Policy.default().to_dict()
    body["watch"]["sla"] = {"roc_auc": {"min": 0.5}}
    body["watch"]["horizon"] = 4
    policy = home.parent / "sla.yaml"
    policy.write_text(yaml.safe_dump(body))
    code, out, _ = run_cli(capsys, *args, "--policy", str(policy), "--json")
    assert code == 0, out
    assert (json.loads(out)["threshold"], json.loads(out)["horizon"]) == (0.5, 4)
    code, _, err = run_cli(capsys, *args, "--policy", str(home.parent / "nope.yaml"))
    assert code == 2
    assert "nope.yaml" in err
    assert "Traceback" not in err
    misspelt = ("forecast", "churn", "--metric", "rocauc", "--threshold", "0.5")
    code, _, err = run_cli(capsys, *misspelt, "--home", str(home))
    assert code == 2
    assert "did you mean 'roc_auc'?" in err
    loss = ("forecast", "churn", "--metric", "log_loss", "--threshold", "0.5")
    code, _, err = run_cli(capsys, *loss, "--home", str(home))
    assert code == 2  # lower is better: the breach is above; these reports hold no log loss
    assert "no monitor report holds metric 'log_loss'" in err
    assert "roc_auc" in err
    code, _, err = run_cli(capsys, *args, "--threshold", "1.5")
    assert code == 2  # it printed "already below the SLA 1.5"
    assert "--threshold 1.5 lies outside what roc_auc can be ([0, 1])" in err
    code, _, err = run_cli(capsys, *args, "--threshold", "0.5", "--seed", "-1")
    assert code == 2  # numpy refused it with a traceback
    assert "--seed" in err
    assert "Traceback" not in err


def test_a_few_rows_inside_a_larger_window_do_not_replace_its_point(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        reference = ws.snapshot(
            make_window(2000, start="2026-01-01", days=90, seed=0), name="ref", time_column="ts"
        )
        version = ws.train(build(), reference).version
        week = ws.monitor(version.ref, make_window(600, start="2026-04-01", days=7, seed=1))
        # later, 60 rows of two days of that week: the same window by time, measured on fewer
        ws.monitor(version.ref, make_window(60, start="2026-04-02", days=2, seed=2))
        (point,) = series_from_catalog(ws.catalog, "churn", "roc_auc")
        assert (point.rows, point.report) == (600, week.record.id)  # type: ignore[union-attr]


def test_an_unknown_slice_is_named_with_the_slices_the_windows_have(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], forecast_command: None
) -> None:
    def monitored(home: Path, slices: dict[str, str] | None, labelled: bool) -> None:
        with Workspace.init(home) as ws:
            ref = make_window(2000, start="2026-01-01", days=90, seed=0)
            version = ws.train(build(), ws.snapshot(ref, name="ref", slices=slices)).version
            week = make_window(600, start="2026-04-01", days=7, seed=1)
            ws.monitor(version.ref, week if labelled else week.drop(columns=["churned"]))

    plain, sliced = tmp_path / "plain", tmp_path / "sliced"
    monitored(plain, None, labelled=True)
    monitored(sliced, {"monthly": "contract == 'monthly'"}, labelled=False)
    args = ("forecast", "churn", "--metric", "roc_auc", "--threshold", "0.5", "--slice")
    code, _, err = run_cli(capsys, *args, "south", "--home", str(plain))
    assert code == 2  # it said "monitor a labelled window": the window was labelled
    assert "unknown slice 'south': the monitored windows of 'churn' have no slice" in err
    assert "the windows of 'churn' have no slices" in err
    code, _, err = run_cli(capsys, *args, "south", "--home", str(sliced))
    assert code == 2
    assert "unknown slice 'south'" in err
    assert "the slices are ['monthly']" in err
    code, _, err = run_cli(capsys, *args, "monthly", "--home", str(sliced))
    assert code == 2  # a slice the windows have, measured only where labels came
    assert "no labelled monitor report holds slice 'monthly'" in err
    assert "monitor a labelled window" in err


def test_the_forecast_is_of_the_aliass_version_not_of_a_window_checked_by_hand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], forecast_command: None
) -> None:
    # a user's hand-run `regrow monitor` of churn:v1, newer than the champion's windows, made
    # the series end on v1: read as a promotion, it restarted the forecast at the wrong model
    home = tmp_path / "ws"
    with Workspace.init(home) as ws:
        reference = ws.snapshot(
            make_window(2000, start="2026-01-01", days=90, seed=0), name="ref", time_column="ts"
        )
        v1 = ws.train(build(), reference).version
        v2 = ws.train(build(), reference, seed=1).version
        ws.promote(v2.ref, "prod")
        for i in range(4):
            week = make_window(600, start=f"2026-04-{1 + 7 * i:02d}", days=7, seed=10 + i)
            ws.monitor(v2.ref if i < 3 else v1.ref, week)
    args = ("forecast", "churn", "--metric", "roc_auc", "--threshold", "0.5", "--home", str(home))
    code, out, _ = run_cli(capsys, *args, "--alias", "prod", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["version"] == "churn:v2"
    assert [p["version"] for p in data["series"]] == ["churn:v2"] * 3
    assert data["notes"][0] == (
        "1 window(s) of churn:v1 monitored since churn:v2 took @prod are left out: the "
        "forecast is of churn:v2"
    )
    code, out, _ = run_cli(capsys, *args, "--alias", "prod")
    assert "churn (churn:v2): roc_auc over 3 window(s):" in out
    code, out, err = run_cli(capsys, *args, "--alias", "prdo")
    assert code == 2
    assert "prdo" in out + err
    assert "Traceback" not in out + err
    code, out, _ = run_cli(capsys, *args, "--json")  # no champion: every window, as before
    assert len(json.loads(out)["series"]) == 4


def test_a_missing_threshold_hint_names_the_side_that_breaks_the_sla_and_a_misspelt_metric() -> (
    None
):
    """The hint for a metric without a threshold wrote `{min: ...}` for an error metric (a
    rule the policy refuses: a max breaks an rmse SLA), and a misspelt metric was asked for
    its threshold instead of being named."""
    from regrow.cli.forecast import _sla

    policy = Policy.default()
    with pytest.raises(ConfigError, match="no --threshold given") as info:
        _sla(policy, "rmse", None, None)
    assert "{rmse: {max: ...}}" in str(info.value.hint)
    with pytest.raises(ConfigError, match="no --threshold given") as info:
        _sla(policy, "roc_auc", None, None)
    assert "{roc_auc: {min: ...}}" in str(info.value.hint)
    with pytest.raises(ConfigError, match="unknown metric 'roc_acu'") as info:
        _sla(policy, "roc_acu", None, None)
    assert str(info.value.hint).startswith("did you mean 'roc_auc'?")
