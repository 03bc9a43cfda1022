"""Drift per chunk: each chunk checked at its own size, one Benjamini-Hochberg family for all."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from regrow.errors import DataError
from regrow.monitor import DriftMonitor, Profile
from regrow.monitor.calibration import adjusted_p_values
from regrow.monitor.chunks import Chunk, Chunking

COLS = [f"f{i}" for i in range(10)]


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, len(COLS))), columns=COLS)


@pytest.fixture(scope="module")
def reference() -> Profile:
    return Profile.of(_frame(20_000, 0))


def test_a_shift_in_one_chunk_is_flagged_in_that_chunk_only(reference: Profile) -> None:
    window = _frame(8_000, 1)
    window.loc[4_000:5_999, "f3"] += 0.6  # the third of four chunks
    chunks = Chunking(count=4).split(window)
    reports = DriftMonitor(reference).check_chunks(window, chunks)
    assert [r.chunk for r in reports] == [c.label for c in chunks]
    assert [r.drifted_columns for r in reports] == [[], [], ["f3"], []]
    assert [r.rows for r in reports] == [2_000] * 4


def test_undrifted_chunks_keep_false_flags_rare(reference: Profile) -> None:
    window = _frame(20 * 1_500, 2)
    reports = DriftMonitor(reference).check_chunks(window, Chunking(count=20).split(window))
    assert len(reports) == 20
    assert all(r.family == 20 * len(COLS) for r in reports)
    flags = sum(len(r.drifted) for r in reports)
    assert flags <= 1  # BH at 0.05 over 200 true nulls: any flag at all has chance <= 5 %
    smallest = min(f.adjusted_p_value for r in reports for f in r.features)
    assert smallest > 0.05 or flags == 1


def test_benjamini_hochberg_runs_once_across_every_chunk(reference: Profile) -> None:
    window = _frame(6_000, 3)
    window.loc[:1_999, "f0"] += 0.15
    reports = DriftMonitor(reference).check_chunks(window, Chunking(count=3).split(window))
    tested = [f for r in reports for f in r.features if f.tested]
    assert len(tested) == reports[0].family == 30
    family = adjusted_p_values([f.p_value for f in tested])
    assert [f.adjusted_p_value for f in tested] == pytest.approx(family.tolist())
    alone = adjusted_p_values([f.p_value for f in reports[0].features])
    assert not np.allclose(alone, [f.adjusted_p_value for f in reports[0].features])
    assert reports[0].control == "Benjamini-Hochberg at q=0.05 across 30 tests"


def test_each_chunk_is_calibrated_for_its_own_size(reference: Profile) -> None:
    window = _frame(5_600, 4)
    chunks = [Chunk("small", np.arange(600)), Chunk("large", np.arange(600, 5_600))]
    small, large = DriftMonitor(reference).check_chunks(window, chunks)
    assert {f.test for f in small.features} == {"ks"}
    assert {f.test for f in large.features} == {"wasserstein"}
    assert all("n=600" in f.why for f in small.features)
    assert all("n=5000" in f.why for f in large.features)
    whole = DriftMonitor(reference).check(window.iloc[600:])
    assert [f.p_value for f in large.features] == [f.p_value for f in whole.features]


def test_chunks_follow_their_row_positions_not_row_order(reference: Profile) -> None:
    window = _frame(4_000, 5)
    window.loc[window.index % 2 == 1, "f1"] -= 0.8  # odd rows shifted
    odd, even = np.arange(1, 4_000, 2), np.arange(0, 4_000, 2)
    reports = DriftMonitor(reference).check_chunks(window, [Chunk("odd", odd), Chunk("even", even)])
    assert [r.drifted_columns for r in reports] == [["f1"], []]


def test_chunk_reports_are_json_with_their_chunk_and_family(reference: Profile) -> None:
    window = _frame(2_000, 6)
    (report,) = DriftMonitor(reference).check_chunks(window, Chunking(count=1).split(window))
    out = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert out["chunk"] == "rows 0-1999"
    assert out["family"] == len(COLS)
    assert out["control"].endswith(f"across {len(COLS)} tests")


def test_check_keeps_its_own_family_and_no_chunk(reference: Profile) -> None:
    report = DriftMonitor(reference).check(_frame(3_000, 7))
    assert report.chunk is None
    assert report.family == len(COLS)


def test_slices_are_checked_per_chunk_in_the_same_family() -> None:
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"x": rng.normal(size=8_000), "g": rng.choice(["a", "b"], 8_000)})
    profile = Profile.of(ref, slices={"a": "g == 'a'"})
    window = pd.DataFrame({"x": rng.normal(size=6_000), "g": rng.choice(["a", "b"], 6_000)})
    late_a = (window.index >= 3_000) & (window["g"] == "a")
    window.loc[late_a, "x"] += 1.0
    reports = DriftMonitor(profile).check_chunks(
        window, Chunking(count=2).split(window), slices={"a": "g == 'a'"}
    )
    sliced = [
        [f.drifted for f in r.features if f.slice == "a" and f.column == "x"] for r in reports
    ]
    assert sliced == [[False], [True]]
    assert (
        reports[0].family
        == reports[1].family
        == sum(1 for r in reports for f in r.features if f.tested)
    )


def test_an_empty_chunk_gets_skipped_columns(reference: Profile) -> None:
    window = _frame(2_000, 9)
    empty, full = DriftMonitor(reference).check_chunks(
        window, [Chunk("none", np.arange(0)), Chunk("all", np.arange(2_000))]
    )
    assert empty.rows == 0
    assert {f.test for f in empty.features} == {"skipped"}
    assert full.family == len(COLS)


def test_chunk_positions_outside_the_window_are_a_data_error(reference: Profile) -> None:
    window = _frame(100, 10)
    with pytest.raises(DataError, match="outside the window"):
        DriftMonitor(reference).check_chunks(window, [Chunk("bad", np.array([5, 100]))])


def test_no_chunks_give_no_reports(reference: Profile) -> None:
    assert DriftMonitor(reference).check_chunks(_frame(100, 11), []) == []


def test_the_fdr_statement_names_a_family_per_reference(reference: Profile) -> None:
    # A system whose members were trained on different snapshots is compared with each, and
    # each reference's tests are one family: "across 5 tests (8 columns ..., one family)"
    # stood beside a table of 10 tests.
    from dataclasses import replace

    from regrow.monitor.assemble import fdr_statement

    window = _frame(2_000, 5)
    report = DriftMonitor(reference).check(window)
    two = [replace(report, reference="cust (lin, rf)"),
           replace(report, reference="later (hgb)", family=2)]  # fmt: skip
    said = fdr_statement(two, 6)
    assert said.startswith("Benjamini-Hochberg at q=0.05 within each reference's tests (")
    assert f"cust (lin, rf): {report.family}, later (hgb): 2;" in said
    assert "one family" not in said
    assert fdr_statement([report], 6).startswith(
        f"Benjamini-Hochberg at q=0.05 across {report.family} tests"
    )
