"""Chunks: a window split by size, by count or by period, so each signal is seen over time.

A monitor result reports every signal (drift per feature, multivariate drift, estimated and
realised performance) for the whole window and for each chunk. :class:`Chunking` says how to
split: ``size`` rows per chunk, ``count`` chunks of equal size, or one chunk per ``period``
of the window's time column (``1h``, ``1d``, ``1w``, ``1mo``, or any multiple: ``6h``, ``2w``).
Rows are taken in the order of the time column when the window has one, else in row order.
A last chunk of fewer than half ``size`` rows is merged into the one before it (its signals
would be mostly noise), and the chunking's ``notes`` say so.

>>> import pandas as pd
>>> frame = pd.DataFrame({"x": range(10)})
>>> [c.rows for c in Chunking(size=4).split(frame)]
[4, 4, 2]
>>> [c.rows for c in Chunking(size=4).split(frame[:9])]
[4, 5]
>>> [c.label for c in Chunking(count=2).split(frame)]
['rows 0-4', 'rows 5-9']
>>> ts = pd.date_range("2026-01-01", periods=10, freq="12h")
>>> [(c.label, c.rows) for c in Chunking(period="1d").split(frame.assign(ts=ts), "ts")]
[('2026-01-01', 2), ('2026-01-02', 2), ('2026-01-03', 2), ('2026-01-04', 2), ('2026-01-05', 2)]
>>> Chunking.parse(size=None, count=None, period="2x")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
regrow.errors.ConfigError: period '2x' is not understood; use a number and a unit: ...
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from regrow.errors import ConfigError

__all__ = ["Chunk", "Chunking", "parse_period"]

_UNITS = {"h": "h", "d": "D", "w": "W-MON", "mo": "MS"}
_PERIOD = re.compile(r"^\s*(\d*)\s*(h|d|w|mo)\s*$")
_HINT = "use a number and a unit: 1h, 6h, 1d, 1w, 2w, 1mo"


def parse_period(period: str) -> str:
    """The pandas frequency of a period such as ``1d``, ``6h``, ``2w`` or ``1mo``.

    >>> parse_period("1d"), parse_period("2w"), parse_period("mo")
    ('1D', '2W-MON', '1MS')
    """
    match = _PERIOD.match(str(period).lower())
    if match is None or match.group(1) == "0":
        raise ConfigError(f"period {period!r} is not understood", hint=_HINT)
    return f"{int(match.group(1) or 1)}{_UNITS[match.group(2)]}"


@dataclass(frozen=True)
class Chunk:
    """One chunk: its label, the positions of its rows in the window, and its time range."""

    label: str
    index: np.ndarray = field(repr=False)
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    @property
    def rows(self) -> int:
        """How many rows the chunk holds."""
        return len(self.index)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: label, rows, and the first and last row's time (ISO) when known."""
        return {
            "label": self.label,
            "rows": self.rows,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
        }


@dataclass(frozen=True)
class Chunking:
    """How to split a window: exactly one of ``size``, ``count`` and ``period``, or none."""

    size: int | None = None
    count: int | None = None
    period: str | None = None

    def __post_init__(self) -> None:
        given = [n for n in ("size", "count", "period") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ConfigError(
                f"chunks are split by one rule; got {', '.join(given)}",
                hint="give one of --chunk-size, --chunks and --period",
            )
        for name in ("size", "count"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(
                    f"the chunk {name} must be a whole number of at least 1; got {value!r}",
                    hint="e.g. --chunk-size 1000 (rows per chunk) or --chunks 4; or --period "
                    "1w to split by time",
                )
        if self.period is not None:
            parse_period(self.period)

    @classmethod
    def parse(cls, *, size: int | None, count: int | None, period: str | None) -> Chunking:
        """The chunking of the CLI's ``--chunk-size``, ``--chunks`` and ``--period``."""
        return cls(size=size, count=count, period=period)

    @property
    def active(self) -> bool:
        """Whether the window is split at all."""
        return self.size is not None or self.count is not None or self.period is not None

    def describe(self) -> str:
        """In words: ``"chunks of 5,000 rows"``, ``"4 chunks"``, ``"one chunk per 1d"``."""
        if self.size is not None:
            return f"chunks of {self.size:,} rows"
        if self.count is not None:
            return f"{self.count} chunks of equal size"
        if self.period is not None:
            return f"one chunk per {self.period}"
        return "the whole window"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the rule and its value."""
        return {"size": self.size, "count": self.count, "period": self.period}

    def split(self, frame: pd.DataFrame, time_column: str | None = None) -> list[Chunk]:
        """The chunks of ``frame`` (positions into it), in time order when ``time_column`` is
        given. With no rule, one chunk holds the whole window."""
        n = len(frame)
        times = None
        if time_column is not None and time_column in frame.columns:
            times = pd.to_datetime(frame[time_column], errors="coerce")
            if times.isna().any():
                times = None
        if self.period is not None:
            if times is None:
                raise ConfigError(
                    f"--period {self.period} needs a time column without nulls in the window"
                    + (f" ({time_column!r})" if time_column else ""),
                    hint="split by --chunk-size or --chunks instead, or give the window a "
                    "time column",
                )
            return _by_period(times, parse_period(self.period))
        order = np.argsort(times.to_numpy(), kind="stable") if times is not None else np.arange(n)
        if self.size is not None:
            bounds = [*range(0, n, self.size), n]
            if len(bounds) > 2 and bounds[-1] - bounds[-2] < self.size / 2:
                del bounds[-2]  # a short last chunk joins the one before it
        elif self.count is not None:
            if self.count > n:
                raise ConfigError(
                    f"{self.count} chunks cannot be made of {n:,} rows",
                    hint="ask for fewer chunks",
                )
            bounds = [round(i * n / self.count) for i in range(self.count + 1)]
        else:
            bounds = [0, n]
        chunks = []
        for lo, hi in itertools.pairwise(bounds):
            index = order[lo:hi]
            start = end = None
            if times is not None and len(index):
                start, end = times.iloc[index[0]], times.iloc[index[-1]]
            chunks.append(Chunk(f"rows {lo}-{hi - 1}", index, start, end))
        return chunks

    def notes(self, frame: pd.DataFrame, chunks: list[Chunk]) -> list[str]:
        """What a user should know about the split: a short last chunk merged, tiny chunks."""
        out = []
        short = self.size is not None and len(frame) % self.size and len(chunks) > 1
        if self.size is not None and short and chunks[-1].rows > self.size:
            out.append(
                f"the last {len(frame) % self.size:,} rows (under half a chunk) joined the "
                f"chunk before them ({chunks[-1].rows:,} rows)"
            )
        small = [c.label for c in chunks if c.rows < 100]
        if small and len(chunks) > 1:
            out.append(
                f"{len(small)} chunk(s) hold fewer than 100 rows ({', '.join(small[:3])}"
                f"{', ...' if len(small) > 3 else ''}): their signals have wide intervals"
            )
        return out


def _by_period(times: pd.Series, freq: str) -> list[Chunk]:
    """One chunk per calendar period the window's rows fall in (empty periods left out)."""
    grouper = pd.Grouper(freq=freq, label="left", closed="left")
    keyed = pd.DataFrame({"t": times.to_numpy(), "i": np.arange(len(times))}).set_index("t")
    chunks = []
    for key, group in keyed.groupby(grouper):
        if len(group) == 0:
            continue
        index = group["i"].to_numpy()
        index = index[np.argsort(group.index.to_numpy(), kind="stable")]
        stamp = pd.Timestamp(str(key))
        label = (
            stamp.strftime("%Y-%m-%d %H:%M") if freq.endswith("h") else stamp.strftime("%Y-%m-%d")
        )
        chunks.append(Chunk(label, index, times.iloc[index[0]], times.iloc[index[-1]]))
    return chunks
