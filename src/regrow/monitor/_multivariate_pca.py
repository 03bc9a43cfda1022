"""PCA reconstruction error: do the window's rows lie where the reference's main components do?

NannyML's data-reconstruction drift, with a threshold calibrated to the window size. The
reference (at most ``max_rows`` rows) is split in two random halves. On the first, the columns
are encoded and standardised (:mod:`regrow.monitor._multivariate_encoding`: numbers median-
imputed with a null indicator, labels one-hot of their top levels with nulls as their own
level) and a PCA keeps the fewest components that explain ``variance`` of the variance (an
eigen-decomposition of the covariance matrix, as scikit-learn's ``covariance_eigh`` solver
does: on thousands of rows and tens of columns it is the fast way, and it yields every
direction the kept components leave out). A row's **reconstruction error** is the Euclidean
distance between its encoded values and their projection on those components; the statistic
is a window's mean.

**Calibration.** The second half's row errors (held out: nothing was fitted on them) give the
null distribution: their mean ``m``, standard deviation and skewness. Under no drift a window's
rows are distributed as the held-out ones, so a window mean of ``n`` rows minus ``m`` has
standard deviation ``sd = s * sqrt(1/n + 1/h)`` (``h`` held-out rows: ``m`` is itself an
estimate), ``s`` the standard deviation pooled over the held-out and the window's row errors
(with ``s`` from the held-out rows alone, a reference that happened to draw few large errors
would lower both ``m`` and ``s``, and heavy-tailed columns then raised the false alarms at
0.95 from 5% to 7%). Row errors are distances, skewed right: the Cornish-Fisher expansion
corrects the normal quantile for the skewness of the difference of the two means, so the
threshold is ``m + sd * (z + (z**2 - 1) * skew / 6)``, ``z`` the one-sided normal quantile of
``level``, and an undrifted window crosses it with probability about ``1 - level`` (measured
over 800 references of 2,000 rows and windows of 20 to 1,000 rows, with normal and with
heavy-tailed columns: 2.8% to 6.2% at 0.95).

A window is **drifted** when its mean error exceeds the threshold *and* is more than
``margin`` (relative) above ``m``. The interval ``[low, high]`` is the window mean's (two-sided
at ``level``). Only a rise counts: rows that lie closer to the components than the
reference's (a window of constants) do not.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController  # no type info

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
from regrow.monitor._multivariate_encoding import Encoder

__all__ = ["PCAReconstruction"]

_METHOD = "pca_reconstruction"


@dataclass(frozen=True)
class _Fitted:
    """What :meth:`PCAReconstruction.fit` learned: the encoding, the covariance's eigenvectors
    (largest first) and how many are kept, and the held-out row errors' mean, sd, skewness and
    count."""

    columns: tuple[str, ...]
    encoder: Encoder
    kept: int
    vectors: np.ndarray
    error_mean: float
    error_sd: float
    error_skew: float
    held_out: int


class PCAReconstruction:
    """NannyML's data-reconstruction drift, with a threshold calibrated to the window size.

    ``variance``: the share of the reference's variance the kept components explain;
    ``level``: one minus the false-alarm rate on undrifted windows; ``margin``: the relative
    rise of the mean error below which a difference is too slight to flag; ``max_rows``: rows
    of the reference (and of a window) used at most, drawn with ``seed``. See the module
    docstring for the threshold.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4000, 2))
    >>> ref = pd.DataFrame({"a": x[:, 0], "b": x[:, 0] + 0.3 * x[:, 1]})
    >>> pca = PCAReconstruction().fit(ref, ["a", "b"])
    >>> pca.check(ref.assign(b=-ref["b"])).drifted, pca.check(ref.head(500)).drifted
    (True, False)
    """

    def __init__(
        self,
        *,
        variance: float = 0.65,
        level: float = 0.99,
        margin: float = 0.05,
        seed: int = 0,
        max_rows: int = 50_000,
    ) -> None:
        self.variance = variance
        self.level = level
        self.margin = margin
        self.seed = seed
        self.max_rows = max_rows
        if not isinstance(variance, int | float) or not 0 < float(variance) <= 1:
            raise ConfigError(
                f"variance must be a share in (0, 1]; got {variance!r}",
                hint="use 0.65, as NannyML does",
            )
        z_of(level)
        check_margin(margin)
        if not isinstance(max_rows, int) or max_rows < 2 * MIN_ROWS:
            raise ConfigError(
                f"max_rows must be a whole number of at least {2 * MIN_ROWS}; got {max_rows!r}",
                hint="use 50000: more rows change the calibration little and cost time",
            )
        self._fitted: _Fitted | None = None

    def __repr__(self) -> str:
        return (
            f"PCAReconstruction(variance={self.variance!r}, level={self.level!r}, "
            f"margin={self.margin!r}, seed={self.seed!r}, max_rows={self.max_rows!r})"
        )

    def fit(self, reference: pd.DataFrame, columns: Sequence[str]) -> PCAReconstruction:
        """Learn the encoding and components on half of ``reference``, and the null
        distribution of row errors on the other half. Returns ``self``."""
        cols, ref, _ = window_columns(reference.columns, reference, columns)
        if len(ref) < 2 * MIN_ROWS:
            raise DataError(
                f"the reference has {len(ref):,} rows; at least {2 * MIN_ROWS} are needed "
                "(half to fit the components, half to calibrate)",
                hint="fit on a larger reference",
            )
        ref = _draw(ref, self.max_rows, self.seed)
        order = np.random.default_rng(self.seed).permutation(len(ref))
        fit, held = ref.iloc[order[: len(ref) // 2]], ref.iloc[order[len(ref) // 2 :]]
        encoder = Encoder.fit(fit, cols)
        with _one_thread():  # small products: threads only cost
            X = encoder(fit)
            values, vectors = np.linalg.eigh(X.T @ X / (len(X) - 1))
            values, vectors = np.clip(values[::-1], 0, None), vectors[:, ::-1]
            total = float(values.sum())
            kept = 0
            if total > 0:
                share = np.cumsum(values) / total
                kept = min(int(np.searchsorted(share, float(self.variance) - 1e-9)) + 1, len(share))
            errors = _errors(encoder(held), vectors, kept)
        self._fitted = _Fitted(
            columns=tuple(cols),
            encoder=encoder,
            kept=kept,
            vectors=np.ascontiguousarray(vectors),
            error_mean=float(errors.mean()),
            error_sd=float(errors.std(ddof=1)),
            error_skew=_skewness(errors),
            held_out=len(errors),
        )
        return self

    @property
    def components(self) -> int:
        """How many principal components were kept (after :meth:`fit`)."""
        return self._state().kept

    def check(self, window: pd.DataFrame, *, chunk: str | None = None) -> MultivariateDrift:
        """The window's mean reconstruction error against the calibrated threshold.

        A column the window lacks is read as all null (``why`` says so); a window of fewer
        than 20 rows is not judged; one of more than ``max_rows`` rows is sampled.
        """
        state = self._state()
        _, win, missing = window_columns(state.columns, window, state.columns)
        if len(win) < MIN_ROWS:
            return too_few(_METHOD, len(win), state.error_mean, chunk)
        win = _draw(win, self.max_rows, self.seed + 1)
        with _one_thread():
            errors = _errors(state.encoder(win), state.vectors, state.kept)
        n, value = len(errors), float(errors.mean())
        half = interval_z(self.level) * float(errors.std(ddof=1)) / math.sqrt(n)
        threshold = self._threshold(state, n, float(errors.var(ddof=1)))
        floor = state.error_mean * (1 + float(self.margin))
        drifted = value > threshold and value > floor
        said = (
            f"mean reconstruction error {value:.3f} [{value - half:.3f}, {value + half:.3f}] "
            f"{'>' if value > threshold else '<='} {threshold:.3f} (chance's bound at "
            f"{percent(self.level)} for {n:,} rows; the reference's mean is "
            f"{state.error_mean:.3f})"
        )
        if drifted:
            why = (
                f"{said} and over {percent(self.margin)} above the reference's: the rows no "
                f"longer lie where the reference's {self.components} main component(s) put them"
            )
        elif value > threshold:
            why = (
                f"{said} but within {percent(self.margin)} of the reference's (the practical "
                f"margin): a real but slight difference"
            )
        else:
            why = f"{said}: the rows lie where the reference's main components put them"
        return MultivariateDrift(
            _METHOD,
            value,
            value - half,
            value + half,
            threshold,
            state.error_mean,
            drifted,
            n,
            why + missing_note(missing),
            chunk,
        )

    def _threshold(self, state: _Fitted, n: int, window_var: float) -> float:
        """The bound an undrifted window mean of ``n`` rows (row errors of variance
        ``window_var``) stays under with probability ``level``: normal, with the
        Cornish-Fisher correction for skew."""
        h = state.held_out
        s = math.sqrt(((h - 1) * state.error_sd**2 + (n - 1) * window_var) / (h + n - 2))
        sd = s * math.sqrt(1 / n + 1 / h)
        if sd == 0:
            return state.error_mean
        skewness = state.error_skew * s**3 * (1 / n**2 - 1 / h**2) / sd**3
        z = z_of(self.level)
        return state.error_mean + sd * (z + (z**2 - 1) * skewness / 6)

    def _state(self) -> _Fitted:
        if self._fitted is None:
            raise ConfigError(
                "this PCAReconstruction is not fitted",
                hint="call .fit(reference, columns) before .check(window)",
            )
        return self._fitted


def _errors(X: np.ndarray, vectors: np.ndarray, kept: int) -> np.ndarray:
    """Each row's distance to its projection on the first ``kept`` of ``vectors`` (the
    covariance's orthonormal eigenvectors, as columns; ``X`` is centred).

    The distance is the length of the row's part along the directions left out, or, when
    fewer directions are kept than left out, what the kept ones leave of the row's length (the
    same number at a fraction of the products; the kept part holds at most ``variance`` of
    the variance, so the subtraction loses little).
    """
    if kept <= vectors.shape[1] - kept:
        along = X @ vectors[:, :kept]
        squares = np.einsum("ij,ij->i", X, X) - np.einsum("ij,ij->i", along, along)
    else:
        off = X @ vectors[:, kept:]
        squares = np.einsum("ij,ij->i", off, off)
    return np.asarray(np.sqrt(np.maximum(squares, 0.0)), dtype=np.float64)


def _skewness(values: np.ndarray) -> float:
    """The sample skewness (adjusted Fisher-Pearson, as ``scipy.stats.skew(bias=False)``);
    0 for values that do not vary.

    >>> round(_skewness(np.array([1.0, 2.0, 3.0, 10.0])), 3), _skewness(np.ones(5))
    (1.764, 0.0)
    """
    n, sd = len(values), float(values.std())
    if n < 3 or sd <= 1e-12 * max(1.0, abs(float(values.mean()))):
        return 0.0
    third = float((((values - values.mean()) / sd) ** 3).mean())
    return third * math.sqrt(n * (n - 1)) / (n - 2)


@functools.cache
def _controller() -> Any:
    """The process's thread pools, found once (finding them takes tens of milliseconds)."""
    return ThreadpoolController()


def _one_thread() -> Any:
    """A context in which BLAS runs on one thread: the products here are small, and on a
    busy machine more threads only wait on each other."""
    return _controller().limit(limits=1, user_api="blas")


def _draw(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, drawn at random with ``seed``."""
    return frame if len(frame) <= rows else frame.sample(rows, random_state=seed)
