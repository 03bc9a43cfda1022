"""Training/serving skew (:mod:`regrow.skew`, ``regrow skew``): a version served by the Open
Inference Protocol app in process, with a shadow candidate beside it, its prediction log
compared with the snapshot it was trained on, feature by feature."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder

from regrow import Member, System, Transform, Workspace
from regrow.config import ServeSettings
from regrow.errors import DataError
from regrow.plan.policy import Policy
from regrow.rollout import machine
from regrow.serve.predlog import PredictionLog
from regrow.testing import run_cli

PLANS = ("free", "pro", "team")
#: A day nothing was served on, and one an older server logged rows without ``plan`` on.
QUIET = ("--since", "2020-01-01", "--until", "2020-01-02")
OLD_DAY = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def customers(rows: int, seed: int, *, income_shift: float = 0.0) -> pd.DataFrame:
    """Customers of a shop: age, income, plan; ``bought`` depends on all three."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    income = (rng.normal(50.0, 15.0, rows) + income_shift).round(2)
    plan = rng.choice(PLANS, rows)
    logit = 0.04 * (age - 45) + 0.05 * (income - 50) + np.where(plan == "pro", 1.0, -0.5)
    bought = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"age": age, "income": income, "plan": plan, "bought": bought})


def shop() -> System:
    return System(
        "shop",
        target="bought",
        task="classification",
        components=[
            Transform("plan_onehot", OneHotEncoder(handle_unknown="ignore"), inputs=["plan"]),
            Member(
                "buyer", LogisticRegression(max_iter=200), inputs=["age", "income", "plan_onehot"]
            ),
        ],
    )


def request(frame: pd.DataFrame) -> dict[str, Any]:
    """An infer request body of ``frame``'s inputs, one tensor per input."""
    types = {"age": "INT64", "income": "FP64", "plan": "BYTES"}
    return {
        "inputs": [
            {"name": n, "shape": [len(frame)], "datatype": t, "data": frame[n].tolist()}
            for n, t in types.items()
        ]
    }


@dataclass(frozen=True)
class Served:
    """The workspace, and when its server served like training, then with income shifted."""

    home: Path
    start: datetime
    middle: datetime
    end: datetime

    def span(self, first: datetime, last: datetime) -> tuple[str, ...]:
        return ("--since", first.isoformat(), "--until", last.isoformat())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """``shop:v1`` (champion) serves 600 rows like its training data, then 600 with income
    one standard deviation higher; ``shop:v2`` scores every request in shadow."""
    from fastapi.testclient import TestClient

    from regrow.serve.app import create_app

    home = tmp_path_factory.mktemp("skew") / "ws"
    with Workspace.init(home) as ws:
        v1 = ws.train(shop(), ws.snapshot(customers(2000, 0), name="shop")).version
        ws.train(shop(), ws.snapshot(customers(2000, 1), name="shop"))
        ws.catalog.move_alias("shop", "champion", v1.id, reason="test")
        ws.set_policy(Policy.from_dict({"promotion": {"protected": ["prod"]}}))
        machine.start(ws, "shop:v2", mode="shadow")
    settings = ServeSettings(log_predictions=True, poll_seconds=3600, rollout_step_seconds=0)
    start = datetime.now(UTC)
    with TestClient(create_app(home, settings)) as client:  # closing it flushes the log
        for seed in (2, 3):
            answer = client.post("/v2/models/shop/infer", json=request(customers(300, seed)))
            assert answer.status_code == 200, answer.text
        time.sleep(0.01)
        middle = datetime.now(UTC)
        for seed in (4, 5):
            shifted = customers(300, seed, income_shift=15.0)
            answer = client.post("/v2/models/shop/infer", json=request(shifted))
            assert answer.status_code == 200, answer.text
    return Served(home, start, middle, datetime.now(UTC) + timedelta(seconds=1))


def test_rows_served_like_the_training_data_show_no_skew(served: Served) -> None:
    with Workspace.open(served.home) as ws:
        report = ws.skew("shop@champion", since=served.start, until=served.middle)
    assert (report.version, report.rows, report.skewed) == ("shop:v1", 600, False)
    assert [f.column for f in report.features] == ["age", "income", "plan"]
    assert all(f.test not in ("missing", "schema") and f.p_value >= 0 for f in report.features)
    assert [(f.null_rate_served, f.null_rate_trained) for f in report.features] == [(0, 0)] * 3
    assert report.verdict == "no skew in 3 features"
    assert report.notes == ()  # the shadow's rows are no other version's served rows


def test_a_shifted_feature_is_skewed_and_only_that_one(served: Served) -> None:
    with Workspace.open(served.home) as ws:
        report = ws.skew("shop:v1", since=served.middle, until=served.end)
    assert report.rows == 600
    assert report.skewed_features == ["income"]
    income = report.features[1]
    assert income.test in income.flagged_by
    assert income.statistic > income.threshold
    assert income.adjusted_p_value < report.fdr
    assert "significant at FDR 0.05" in income.why
    assert report.verdict == "skewed: income"
    assert "Benjamini-Hochberg at q=0.05" in report.control
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data  # JSON types only
    assert [f["skewed"] for f in data["features"]] == [False, True, False]


def test_rows_a_version_only_scored_in_shadow_are_not_served_rows(served: Served) -> None:
    with Workspace.open(served.home) as ws, pytest.raises(DataError) as caught:
        ws.skew("shop:v2", since=served.start, until=served.end)
    assert "no rows served by shop:v2" in caught.value.message
    assert "1,200 rows were served by other versions (shop:v1 1,200)" in str(caught.value.hint)


def test_an_input_the_log_lacks_is_reported_not_tested(served: Served) -> None:
    frame = customers(200, 6)[["age", "income"]]  # an older server's log: no plan
    with Workspace.open(served.home) as ws:
        with PredictionLog(ws.catalog, ws.store, flush_seconds=3600) as log:
            log.record(
                system="shop", version="shop:v1", lane="main", request_ids=["old"] * 200,
                rows=list(range(200)), inputs=frame, outputs={"predict": np.zeros(200, int)},
                at=OLD_DAY,
            )  # fmt: skip
        report = ws.skew("shop:v1", since=OLD_DAY, until=OLD_DAY + timedelta(hours=1))
    plan = report.features[2]
    assert (plan.column, plan.test, plan.skewed) == ("plan", "missing", False)
    assert report.notes == ("the log holds no input 'plan' of shop:v1's rows: not tested",)
    assert report.verdict == "no skew in 2 features"


def test_the_cli_prints_a_table_per_feature_and_exits_1_on_skew(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    home = ("--home", str(served.home))
    code, out, err = run_cli(
        capsys, "skew", "shop@champion", *served.span(served.start, served.middle), *home
    )
    assert (code, err) == (0, "")
    assert "shop:v1: 600 rows served" in out
    assert out.rstrip().endswith("no skew in 3 features")
    code, out, err = run_cli(
        capsys, "skew", "shop@champion", *served.span(served.middle, served.end), *home
    )
    assert code == 1, err
    assert "income: " in out  # the why of the skewed feature
    assert out.rstrip().endswith("skewed: income")
    assert "exit status 0 when no feature is skewed, 1 when one is" in " ".join(
        run_cli(capsys, "skew", "--help")[1].lower().split()
    )


def test_the_cli_json_holds_every_feature_and_the_verdict(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys, "skew", "shop:v1", *served.span(served.middle, served.end),
        "--home", str(served.home), "--json",
    )  # fmt: skip
    data = json.loads(out)
    assert code == 1
    assert (data["version"], data["rows"], data["skewed_features"]) == ("shop:v1", 600, ["income"])
    assert [f["column"] for f in data["features"]] == ["age", "income", "plan"]
    assert {"test", "statistic", "threshold", "adjusted_p_value", "null_rate_served"} <= set(
        data["features"][0]
    )


def test_a_range_with_nothing_served_is_an_error_with_a_hint_and_no_traceback(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "skew", "shop@champion", *QUIET, "--home", str(served.home))
    assert (code, out) == (2, "")
    assert "error: no logged predictions of 'shop' between 2020-01-01" in err
    assert "hint: its log holds" in err
    assert "Traceback" not in err
    code, out, err = run_cli(capsys, "skew", "shop:v9", "--since", "1h", "--home", str(served.home))
    assert (code, out) == (2, "")
    assert "shop:v9" in err
    assert "hint: " in err
