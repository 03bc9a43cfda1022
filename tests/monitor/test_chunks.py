"""Chunking a window by size, count and period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regrow.errors import ConfigError
from regrow.monitor.chunks import Chunking, parse_period


def test_size_chunks_cover_every_row_once_and_merge_a_short_tail() -> None:
    frame = pd.DataFrame({"x": range(10_250)})
    chunks = Chunking(size=1000).split(frame)
    assert [c.rows for c in chunks][:-1] == [1000] * 9
    assert chunks[-1].rows == 1250  # 250 rows (< half a chunk) joined the last one
    assert sorted(np.concatenate([c.index for c in chunks]).tolist()) == list(range(10_250))
    assert any("joined" in n for n in Chunking(size=1000).notes(frame, chunks))


def test_count_chunks_are_equal_and_ordered_by_time() -> None:
    ts = pd.date_range("2026-01-01", periods=9, freq="h")[::-1]  # rows newest first
    frame = pd.DataFrame({"ts": ts, "x": range(9)})
    chunks = Chunking(count=3).split(frame, "ts")
    assert [c.rows for c in chunks] == [3, 3, 3]
    assert frame.x.iloc[chunks[0].index].tolist() == [8, 7, 6]  # oldest first
    assert chunks[0].start == pd.Timestamp("2026-01-01 00:00")
    assert chunks[-1].to_dict()["end"] == "2026-01-01T08:00:00"


def test_period_chunks_follow_the_calendar_and_skip_empty_periods() -> None:
    ts = pd.to_datetime(["2026-03-02", "2026-03-03", "2026-03-20", "2026-03-21"])
    frame = pd.DataFrame({"ts": ts})
    chunks = Chunking(period="1w").split(frame, "ts")
    assert [c.rows for c in chunks] == [2, 2]
    assert [c.label for c in Chunking(period="1mo").split(frame, "ts")] == ["2026-03-01"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 10, "count": 2}, "one rule"),
        ({"size": 0}, "at least 1"),
        ({"period": "fortnight"}, "not understood"),
        ({"period": "0d"}, "not understood"),
    ],
)
def test_bad_rules_are_refused_with_the_value(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Chunking(**kwargs)  # type: ignore[arg-type]


def test_a_period_needs_a_time_column_and_count_needs_rows() -> None:
    frame = pd.DataFrame({"x": range(5)})
    with pytest.raises(ConfigError, match="time column") as info:
        Chunking(period="1d").split(frame)
    assert "--chunk-size" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="6 chunks cannot be made of 5 rows"):
        Chunking(count=6).split(frame)


def test_no_rule_is_one_chunk_and_periods_parse() -> None:
    assert [c.rows for c in Chunking().split(pd.DataFrame({"x": range(7)}))] == [7]
    assert not Chunking().active
    assert parse_period("6h") == "6h"
    assert parse_period("2W") == "2W-MON"
