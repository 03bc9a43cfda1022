"""The drift monitor end to end: the issue's scenario in small form, slices, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from regrow.errors import ConfigError, DataError, SliceError
from regrow.monitor import DriftMonitor, DriftReport, Profile
from regrow.monitor.drift_monitor import FeatureDrift

ROWS, COLS = 20_000, 20
NAMES = [f"f{i}" for i in range(COLS)]


def _scenario(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(rng.normal(size=(ROWS, COLS)), columns=NAMES)
    cur = pd.DataFrame(rng.normal(size=(ROWS, COLS)), columns=NAMES)
    cur["f1"] += 0.1
    cur["f2"] += 0.5
    cur["f3"] *= 1.2
    cur["f4"] += np.where(rng.random(ROWS) < 0.1, 3.0, 0.0)
    return ref, cur


@pytest.fixture(scope="module")
def scenario() -> tuple[Profile, pd.DataFrame, pd.DataFrame]:
    ref, cur = _scenario(0)
    return Profile.of(ref), ref, cur


def test_issue_scenario_flags_the_shifted_columns_only(scenario: tuple) -> None:
    profile, _, cur = scenario
    report = DriftMonitor(profile).check(cur)
    assert report.drifted_columns == ["f1", "f2", "f3", "f4"]
    assert {f.test for f in report.features} == {"wasserstein"}
    f2 = next(f for f in report.features if f.column == "f2")
    assert f2.effect == pytest.approx(0.5, abs=0.03)
    assert f2.effect_interval[0] < f2.effect < f2.effect_interval[1]
    assert "drifted" in f2.why
    assert "0.5" in f2.why


def test_stored_profile_gives_the_same_report(scenario: tuple) -> None:
    profile, _, cur = scenario
    stored = Profile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert DriftMonitor(stored).check(cur) == DriftMonitor(profile).check(cur)


def test_arrow_window_equals_pandas_window(scenario: tuple) -> None:
    profile, _, cur = scenario
    monitor = DriftMonitor(profile)
    a, b = monitor.check(cur), monitor.check(pa.Table.from_pandas(cur, preserve_index=False))
    assert a.drifted_columns == b.drifted_columns


def test_report_is_json_and_a_table(scenario: tuple) -> None:
    profile, _, cur = scenario
    report = DriftMonitor(profile).check(cur.iloc[:500])
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert json.loads(text)["drifted_columns"] == report.drifted_columns
    rows = report.table()
    assert len(rows) == COLS
    assert {"column", "test", "p_value", "why"} <= set(rows[0])
    assert {r["test"] for r in rows} == {"ks"}  # 500 rows: a small window


def test_override_and_per_kind_tests(scenario: tuple) -> None:
    profile, _, cur = scenario
    report = DriftMonitor(profile, tests={"numeric": "psi"}, overrides={"f2": "ks"}).check(cur)
    tests = {f.column: f.test for f in report.features}
    assert tests["f2"] == "ks"
    assert tests["f0"] == "psi"
    assert "f2" in report.drifted_columns


def test_reference_data_replaces_the_sketch(scenario: tuple) -> None:
    profile, ref, cur = scenario
    report = DriftMonitor(profile, reference_data=ref).check(cur)
    assert report.drifted_columns == ["f1", "f2", "f3", "f4"]


def test_margin_silences_small_but_significant_shifts(scenario: tuple) -> None:
    profile, _, cur = scenario
    report = DriftMonitor(profile, margin={"wasserstein": 0.2}).check(cur)
    assert report.drifted_columns == ["f2", "f4"]
    f1 = next(f for f in report.features if f.column == "f1")
    assert "within the irrelevance margin" in f1.why


def test_unknown_test_name_fails_early(scenario: tuple) -> None:
    with pytest.raises(ConfigError, match="unknown drift test 'nope'"):
        DriftMonitor(scenario[0], overrides={"f0": "nope"})


def _mixed(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "c": rng.choice(list("abc"), n),
            "g": rng.choice(["north", "south"], n),
            "t": pd.date_range("2024-01-01", periods=n, freq="min"),
        }
    )


@pytest.fixture(scope="module")
def mixed() -> Profile:
    return Profile.of(_mixed(4_000, 1), slices={"north": "g == 'north'"})


def _row(report: DriftReport, column: str, test: str | None = None) -> FeatureDrift:
    return next(f for f in report.features if f.column == column and test in (None, f.test))


def test_missing_column_is_a_drifted_schema_row(mixed: Profile) -> None:
    report = DriftMonitor(mixed).check(_mixed(2_000, 2).drop(columns="x"))
    row = _row(report, "x")
    assert (row.test, row.drifted) == ("schema", True)
    assert "missing" in row.why


def test_extra_column_is_reported_not_flagged(mixed: Profile) -> None:
    window = _mixed(2_000, 2).assign(new=1.0)
    row = _row(DriftMonitor(mixed).check(window), "new")
    assert (row.test, row.drifted) == ("schema", False)
    assert "not in the reference" in row.why


def test_wrong_kind_is_a_drifted_schema_row(mixed: Profile) -> None:
    window = _mixed(2_000, 2).assign(x=lambda f: f["x"].astype(str))
    row = _row(DriftMonitor(mixed).check(window), "x")
    assert (row.test, row.drifted) == ("schema", True)
    assert "string" in row.why


def test_all_null_column_is_drifted(mixed: Profile) -> None:
    window = _mixed(2_000, 2).assign(x=np.nan)
    row = _row(DriftMonitor(mixed).check(window), "x")
    assert (row.test, row.drifted) == ("nulls", True)
    assert "all null" in row.why


def test_empty_window_is_a_data_error(mixed: Profile) -> None:
    with pytest.raises(DataError, match="no rows"):
        DriftMonitor(mixed).check(_mixed(0, 2))


def test_never_seen_categories_are_their_own_signal(mixed: Profile) -> None:
    window = _mixed(2_000, 2)
    window.loc[:99, "c"] = "zzz"
    report = DriftMonitor(mixed).check(window)
    row = _row(report, "c", "unseen")
    assert row.drifted
    assert row.effect == pytest.approx(0.05)
    assert not _row(DriftMonitor(mixed).check(_mixed(2_000, 3)), "c", "unseen").drifted


def test_datetime_columns_are_skipped_with_a_reason(mixed: Profile) -> None:
    row = _row(DriftMonitor(mixed).check(_mixed(2_000, 2)), "t")
    assert (row.test, row.drifted) == ("skipped", False)


def test_drift_in_one_slice_is_found(mixed: Profile) -> None:
    window = _mixed(4_000, 4)
    north = window["g"] == "north"
    window.loc[north, "x"] += 1.0
    window.loc[~north, "x"] -= 1.0  # the whole window barely moves
    report = DriftMonitor(mixed).check(window, slices={"north": "g == 'north'"})
    assert _row(report, "x").slice is None
    sliced = [f for f in report.features if f.slice == "north" and f.column == "x"]
    assert sliced
    assert sliced[0].drifted


def test_unprofiled_slice_is_a_slice_error(mixed: Profile) -> None:
    with pytest.raises(SliceError, match="'south' is not profiled"):
        DriftMonitor(mixed).check(_mixed(100, 2), slices={"south": "g == 'south'"})


def test_no_drift_mixed_window_is_quiet(mixed: Profile) -> None:
    assert DriftMonitor(mixed).check(_mixed(3_000, 5)).drifted_columns == []
