"""Samples of large windows: seeded, stratified by label, in order, nested."""

from __future__ import annotations

import numpy as np
import pandas as pd

from regrow.monitor.sample import describe_sample, sample_rows


def _frame(rows: int, positives: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < positives).astype(float)
    y[rng.random(rows) < 0.1] = np.nan  # unlabelled rows: a stratum of their own
    return pd.DataFrame({"x": np.arange(rows), "y": y})


def test_a_sample_keeps_each_class_share_and_the_window_order() -> None:
    frame = _frame(20_000, 0.07)
    sample = sample_rows(frame, 4_000, by="y", seed=3)
    assert len(sample) == 4_000
    assert sample.index.is_monotonic_increasing
    whole = frame.y.value_counts(normalize=True, dropna=False).sort_index()
    part = sample.y.value_counts(normalize=True, dropna=False).sort_index()
    assert np.allclose(whole.to_numpy(), part.to_numpy(), atol=1 / 4_000)


def test_the_same_seed_gives_the_same_sample_and_smaller_samples_are_inside_larger() -> None:
    frame = _frame(10_000, 0.3)
    a = sample_rows(frame, 3_000, by="y", seed=1)
    assert a.index.equals(sample_rows(frame, 3_000, by="y", seed=1).index)
    assert not a.index.equals(sample_rows(frame, 3_000, by="y", seed=2).index)
    assert set(sample_rows(frame, 1_000, by="y", seed=1).index) <= set(a.index)
    assert set(sample_rows(frame, 1_000, seed=1).index) <= set(
        sample_rows(frame, 3_000, seed=1).index
    )


def test_small_frames_are_kept_whole_and_described_as_such() -> None:
    frame = _frame(500, 0.5)
    assert sample_rows(frame, 1_000, by="y") is frame
    assert describe_sample(500, 500, "rows", stratified=True, seed=0) == "the 500 rows"
    assert describe_sample(8_000, 50_000, "labelled rows", stratified=True, seed=0) == (
        "8,000 of the 50,000 labelled rows (a sample stratified by label, seed 0)"
    )
