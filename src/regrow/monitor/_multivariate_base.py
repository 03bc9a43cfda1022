"""What both multivariate checks share: their result, and how they read the columns they get.

:class:`MultivariateDrift` is one method's answer for one scope (the whole window or a chunk).
:func:`window_columns` reads the columns a check compares: a column the reference lacks is a
:class:`~regrow.errors.DataError`; one the window lacks is read as all null (as the version
would read it, see :mod:`regrow.monitor.data_quality`), and the result's ``why`` says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from regrow.errors import ConfigError, DataError

__all__ = [
    "MIN_ROWS",
    "MultivariateDrift",
    "check_margin",
    "interval_z",
    "missing_note",
    "percent",
    "too_few",
    "window_columns",
    "z_of",
]

MIN_ROWS = 20  # fewer window rows than this are not judged: the result says "too few rows"


@dataclass(frozen=True)
class MultivariateDrift:
    """One multivariate check of one scope: its value, the bound chance stays under, the verdict.

    ``value`` is the held-out AUC (``method="domain_classifier"``) or the window's mean
    reconstruction error (``"pca_reconstruction"``); ``[low, high]`` its interval;
    ``reference`` the value without drift; ``threshold`` the calibrated bound chance stays under
    at the check's level. ``drifted`` needs the value above the threshold *and* beyond the
    practical margin; ``why`` says so in one sentence with the numbers. ``rows`` counts the
    window rows used; ``chunk`` is the chunk's label, None for the whole window. Values that
    could not be computed (too few rows) are NaN.

    >>> result = MultivariateDrift("domain_classifier", 0.5, 0.45, 0.55, 0.53, 0.5, False, 900,
    ...                            "AUC 0.50 [0.45, 0.55] <= 0.53")
    >>> result.to_dict()["value"], MultivariateDrift.from_dict(result.to_dict()) == result
    (0.5, True)
    """

    method: str
    value: float
    low: float
    high: float
    threshold: float
    reference: float
    drifted: bool
    rows: int
    why: str
    chunk: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values: floats as floats, NaN as None."""
        out = asdict(self)
        for key in ("value", "low", "high", "threshold", "reference"):
            number = float(out[key])
            out[key] = None if math.isnan(number) else number
        out["drifted"] = bool(self.drifted)
        out["rows"] = int(self.rows)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MultivariateDrift:
        """The result :meth:`to_dict` wrote (None read back as NaN)."""
        numbers = {
            key: math.nan if data[key] is None else float(data[key])
            for key in ("value", "low", "high", "threshold", "reference")
        }
        return cls(
            method=str(data["method"]),
            drifted=bool(data["drifted"]),
            rows=int(data["rows"]),
            why=str(data["why"]),
            chunk=None if data.get("chunk") is None else str(data["chunk"]),
            **numbers,
        )


def z_of(level: float, name: str = "level") -> float:
    """The one-sided normal quantile of ``level``, after checking it lies in (0.5, 1).

    >>> round(z_of(0.99), 3)
    2.326
    """
    if not isinstance(level, int | float) or not 0.5 < float(level) < 1:
        raise ConfigError(
            f"{name} must be a probability in (0.5, 1); got {level!r}",
            hint="use 0.99 for one false alarm in a hundred undrifted windows",
        )
    return float(norm.ppf(level))


def interval_z(level: float) -> float:
    """The two-sided normal quantile of ``level``: an interval's half-width in standard errors.

    >>> round(interval_z(0.95), 2)
    1.96
    """
    return float(norm.ppf(0.5 + level / 2))


def percent(level: float) -> str:
    """``level`` as a percentage for a sentence.

    >>> percent(0.99), percent(0.995)
    ('99%', '99.5%')
    """
    return f"{level * 100:g}%"


def check_margin(margin: float) -> float:
    """``margin`` as a float, after checking it is a number of at least 0."""
    if not isinstance(margin, int | float) or not 0 <= float(margin) < 1:
        raise ConfigError(
            f"margin must be a number in [0, 1); got {margin!r}",
            hint="use 0.05; 0 flags every difference chance cannot explain",
        )
    return float(margin)


def window_columns(
    reference: Iterable[Any], window: pd.DataFrame, columns: Sequence[str]
) -> tuple[list[str], pd.DataFrame, list[str]]:
    """The columns to compare, the window restricted to them, and those it lacked.

    ``reference`` holds the reference's column names. A column missing from the window is read
    as all null; one missing from the reference is a :class:`~regrow.errors.DataError` (there
    is nothing to compare it with).

    >>> cols, win, missing = window_columns(["a", "b"], pd.DataFrame({"a": [3.0]}), ["a", "b"])
    >>> cols, bool(win["b"].isna().all()), missing
    (['a', 'b'], True, ['b'])
    """
    cols = list(dict.fromkeys(str(c) for c in columns))
    if not cols:
        raise ConfigError(
            "no columns to compare", hint="name the feature columns the window should share"
        )
    known = [str(c) for c in reference]
    absent = [c for c in cols if c not in known]
    if absent:
        raise DataError(
            f"column(s) {', '.join(map(repr, absent))} are not in the reference",
            hint=f"compare only columns the reference holds: {', '.join(map(repr, known[:10]))}"
            + (", ..." if len(known) > 10 else ""),
        )
    missing = [c for c in cols if c not in window.columns]
    present = window[[c for c in cols if c in window.columns]]
    if missing:
        present = present.assign(**dict.fromkeys(missing, np.nan))[cols]
    return cols, present, missing


def missing_note(missing: Sequence[str]) -> str:
    """The clause a ``why`` ends with when the window lacked columns ("" when it did not).

    >>> missing_note(["b"])
    "; column(s) 'b' missing from the window were read as all null"
    """
    if not missing:
        return ""
    return (
        f"; column(s) {', '.join(map(repr, missing))} missing from the window were read as all null"
    )


def too_few(
    method: str, rows: int, reference: float, chunk: str | None, what: str = "window"
) -> MultivariateDrift:
    """The result of a scope with fewer than :data:`MIN_ROWS` rows: not judged, not drifted."""
    return MultivariateDrift(
        method=method,
        value=math.nan,
        low=math.nan,
        high=math.nan,
        threshold=math.nan,
        reference=reference,
        drifted=False,
        rows=rows,
        why=f"too few rows to judge: the {what} has {rows:,} (at least {MIN_ROWS} are needed)",
        chunk=chunk,
    )
