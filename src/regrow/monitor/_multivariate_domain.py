"""The domain classifier: can a small boosted classifier tell window rows from reference rows?

Per-feature drift tests miss a shift in how features go together (a correlation that flips,
each marginal unchanged); a classifier on all the columns sees it. Up to ``rows`` rows of each
side are drawn; half of each side fits the classifier, the other half is scored, and the AUC
on the scored rows is the statistic.

**Calibration.** Without drift the two sides' rows are exchangeable, so the scores of the
held-out rows do not depend on their side and the held-out AUC is a Mann-Whitney statistic
under its null: mean 0.5 and standard error ``SE0 = sqrt((n0 + n1 + 1) / (12 n0 n1))``
(Hanley and McNeil's at an AUC of 0.5) for ``n0`` reference and ``n1`` window rows scored.
The threshold is ``0.5 + z_level * SE0``, so an undrifted window crosses it with probability
at most ``1 - level`` (ties in the scores only narrow the null). Measured with no margin:
15 false alarms in 300 undrifted windows of 2,000 rows at 0.95; 17 in 200 windows of 50
rows at 0.9. A window is **drifted** when its AUC exceeds the threshold *and*
``0.5 + margin``: below that, a difference is real but too slight to act on. The interval
``[low, high]`` is Hanley and McNeil's at the observed AUC (two-sided at ``level``).

Columns are read as the classifier can: numbers (nullable ones and booleans too) as floats,
``inf`` as null, times as seconds, everything else as categories (the 249 most frequent labels
and one level for all the others: HistGradientBoosting takes at most 255), nulls as missing
values the trees route on their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from regrow._threads import small_data_threads
from regrow.errors import ConfigError, DataError
from regrow.monitor._multivariate_base import (
    MIN_ROWS,
    MultivariateDrift,
    check_margin,
    interval_z,
    missing_note,
    percent,
    too_few,
    window_columns,
    z_of,
)

__all__ = [
    "DomainCheck",
    "as_numbers",
    "domain_check",
    "domain_classifier",
    "labels_of",
    "tree_frame",
]

_METHOD = "domain_classifier"
_MAX_LEVELS = 250  # categories a column keeps (HistGradientBoosting takes at most 255)


@dataclass(frozen=True)
class DomainCheck:
    """How well a classifier tells window rows from reference rows (0.5: not at all)."""

    auc: float
    low: float
    high: float
    rows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"auc": self.auc, "low": self.low, "high": self.high, "rows": self.rows}


def domain_check(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    columns: Sequence[str],
    *,
    seed: int = 0,
    rows: int = 2000,
    confidence: float = 0.95,
) -> DomainCheck:
    """Multivariate drift: the held-out AUC of a small boosted classifier of window vs reference.

    Up to ``rows`` rows of each side, half to fit, half to score; the interval is Hanley and
    McNeil's at ``confidence``; ``rows`` of the result counts the scored rows. The planner's
    form of :func:`domain_classifier` (which also decides, against a calibrated threshold).
    """
    auc, n0, n1, _ = _held_out_auc(reference, window, list(columns), seed=seed, rows=rows)
    half = float(norm.ppf(0.5 + confidence / 2)) * _hanley_mcneil(auc, n0, n1)
    return DomainCheck(auc, auc - half, auc + half, n0 + n1)


def domain_classifier(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    columns: Sequence[str],
    *,
    seed: int = 0,
    rows: int = 2000,
    level: float = 0.99,
    margin: float = 0.05,
    chunk: str | None = None,
) -> MultivariateDrift:
    """Whether a classifier tells the window's rows from the reference's, beyond chance.

    The threshold is ``0.5 + z_level * SE0``, ``SE0`` the null standard error of the AUC at the
    scored row counts; drifted when the AUC exceeds it and ``0.5 + margin`` (see the module
    docstring). A column the window lacks is read as all null (``why`` says so); a window of
    fewer than 20 rows is not judged.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 2))
    >>> ref = pd.DataFrame({"a": x[:, 0], "b": x[:, 0] + 0.3 * x[:, 1]})
    >>> win = pd.DataFrame({"a": x[:, 1], "b": -x[:, 1] + 0.3 * x[:, 0]})  # b flips
    >>> result = domain_classifier(ref, win, ["a", "b"])
    >>> result.drifted, result.value > 0.9, round(result.threshold, 3)
    (True, True, 0.53)
    """
    z = z_of(level)
    margin = check_margin(margin)
    if not isinstance(rows, int) or rows < MIN_ROWS:
        raise ConfigError(
            f"rows must be a whole number of at least {MIN_ROWS}; got {rows!r}",
            hint="use 2000: enough for an AUC within about 0.03",
        )
    cols, win, missing = window_columns(reference.columns, window, columns)
    if len(reference) < MIN_ROWS:
        raise DataError(
            f"the reference has {len(reference):,} rows; at least {MIN_ROWS} are needed",
            hint="compare with a larger reference",
        )
    if len(win) < MIN_ROWS:
        return too_few(_METHOD, len(win), 0.5, chunk)
    auc, n0, n1, used = _held_out_auc(reference, win, cols, seed=seed, rows=rows)
    threshold = 0.5 + z * math.sqrt((n0 + n1 + 1) / (12 * n0 * n1))
    half = interval_z(level) * _hanley_mcneil(auc, n0, n1)
    low, high = max(0.0, auc - half), min(1.0, auc + half)
    floor = 0.5 + margin
    drifted = auc > threshold and auc > floor
    said = (
        f"AUC {auc:.3f} [{low:.3f}, {high:.3f}] "
        f"{'>' if auc > threshold else '<='} {threshold:.3f} (chance's bound at "
        f"{percent(level)} for {n0 + n1:,} scored rows)"
    )
    if drifted:
        why = f"{said} and > {floor:.3f}: a classifier tells the window's rows from the reference's"
    elif auc > threshold:
        why = f"{said} but <= {floor:.3f} (the practical margin): a real but slight difference"
    else:
        why = f"{said}: a classifier cannot tell the window's rows from the reference's"
    return MultivariateDrift(
        _METHOD, auc, low, high, threshold, 0.5, drifted, used, why + missing_note(missing), chunk
    )


def tree_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as a boosted classifier reads it: floats (NaN for null and ``inf``) and
    categories (codes of the 249 most frequent labels, one more for all the others).

    >>> tree_frame(pd.DataFrame({"x": pd.array([1, None], dtype="Int64"), "c": ["a", None]})).dtypes
    x     float64
    c    category
    dtype: object
    """
    out: dict[str, Any] = {}
    for col in frame.columns:
        numbers = as_numbers(frame[col])
        out[col] = _categories(frame[col]) if numbers is None else numbers
    return pd.DataFrame(out, index=frame.index)


def as_numbers(values: pd.Series) -> np.ndarray | None:
    """A column of numbers, booleans, times or durations as floats (NaN for null and ``inf``;
    times in seconds); None for a column of labels.

    >>> as_numbers(pd.Series([1.0, float("inf"), None])), as_numbers(pd.Series(["a"]))
    (array([ 1., nan, nan]), None)
    """
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    elif pd.api.types.is_datetime64_any_dtype(values):
        since = pd.to_datetime(values, utc=True) - pd.Timestamp(0, tz="UTC")
        numbers = (since / pd.Timedelta(seconds=1)).to_numpy(dtype="float64", na_value=np.nan)
    elif pd.api.types.is_timedelta64_dtype(values):
        numbers = values.dt.total_seconds().to_numpy(dtype="float64", na_value=np.nan)
    else:
        return None
    return np.where(np.isfinite(numbers), numbers, np.nan)


def labels_of(values: pd.Series) -> tuple[np.ndarray, list[str], np.ndarray]:
    """A column read as labels: each row's code into its distinct labels (as text; -1 for
    null), those labels most frequent first (ties by text), and their counts.

    >>> labels_of(pd.Series(["b", None, "a", "b", 1]))
    (array([ 0, -1,  2,  0,  1]), ['b', '1', 'a'], array([2, 1, 1]))
    """
    codes, uniques = pd.factorize(values)
    if len(uniques) == 0:
        return np.full(len(values), -1, dtype=np.int64), [], np.zeros(0, dtype=np.int64)
    texts = np.array([str(u) for u in uniques], dtype=object)
    distinct, back = np.unique(texts, return_inverse=True)  # 1 and "1" are one label
    counts = np.bincount(back[codes[codes >= 0]], minlength=len(distinct))
    order = sorted(range(len(distinct)), key=lambda i: (-counts[i], distinct[i]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    out = np.where(codes >= 0, rank[back[np.maximum(codes, 0)]], -1).astype(np.int64)
    return out, [str(distinct[i]) for i in order], counts[order]


def _categories(values: pd.Series) -> pd.Series:
    """A column of labels as categories: its most frequent levels, the rest as one more."""
    codes, names, _ = labels_of(values)
    if len(names) > _MAX_LEVELS:
        codes = np.minimum(codes, _MAX_LEVELS - 1)  # null stays -1
    kept = pd.Index(np.arange(min(len(names), _MAX_LEVELS)))
    return pd.Series(pd.Categorical.from_codes(codes, categories=kept), index=values.index)


def _held_out_auc(
    reference: pd.DataFrame, window: pd.DataFrame, columns: list[str], *, seed: int, rows: int
) -> tuple[float, int, int, int]:
    """The held-out AUC, the scored reference and window rows, and the window rows drawn.

    ``n`` rows of each side (at most ``rows``); the first half of each side's draw fits the
    classifier, the second is scored, so the scored counts are known exactly.
    """
    from sklearn.metrics import roc_auc_score

    n = min(rows, len(reference), len(window))
    ref = reference[columns].sample(n, random_state=seed)
    win = window[columns].sample(n, random_state=seed + 1)
    X = tree_frame(pd.concat([ref, win], ignore_index=True))
    y = np.r_[np.zeros(n), np.ones(n)]
    rng = np.random.default_rng(seed)
    ref_order, win_order = rng.permutation(n), n + rng.permutation(n)
    half = n // 2
    fit = np.r_[ref_order[:half], win_order[:half]]
    score = np.r_[ref_order[half:], win_order[half:]]
    clf = _classifier(seed)
    with small_data_threads(len(X)):
        clf.fit(X.iloc[fit], y[fit])
        auc = float(roc_auc_score(y[score], clf.predict_proba(X.iloc[score])[:, 1]))
    return auc, n - half, n - half, n


def _hanley_mcneil(auc: float, n0: int, n1: int) -> float:
    """Hanley and McNeil's standard error of an AUC over ``n0`` negatives and ``n1`` positives.

    >>> round(_hanley_mcneil(0.5, 1000, 1000), 5)  # at 0.5: sqrt((n0 + n1 + 1) / (12 n0 n1))
    0.01291
    """
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n0 * n1)
    return math.sqrt(max(var, 0.0))


def _classifier(seed: int) -> Any:
    """50 rounds of 15-leaf trees: LightGBM when installed (several times faster on a few
    thousand rows), else scikit-learn's HistGradientBoosting."""
    try:
        from lightgbm import LGBMClassifier
    except ImportError:
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=50, max_leaf_nodes=15, learning_rate=0.1, early_stopping=False,
            random_state=seed, categorical_features="from_dtype",
        )  # fmt: skip
    return LGBMClassifier(
        n_estimators=50, num_leaves=15, learning_rate=0.1, n_jobs=1, verbose=-1,
        random_state=seed,
    )  # fmt: skip
