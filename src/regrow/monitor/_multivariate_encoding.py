"""Columns of any kind as one standardised numeric matrix, for the PCA reconstruction check.

Learned on the reference (:meth:`Encoder.fit`), applied as learned to any window:

* a column of numbers (booleans, nullable integers, times and durations too): the value, nulls
  and ``inf`` replaced by the reference's median, plus a 0/1 column saying the value was null;
  a window's labels in such a column count as null;
* a column of labels: one-hot of the reference's ten most frequent levels, one more column for
  every other value (levels never seen included) and one for null.

Each encoded column is then standardised with the reference's mean and standard deviation (a
constant column is only centred), so a value the reference never held, or a null where it had
none, lies off the reference's principal components.

>>> import pandas as pd
>>> ref = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "c": ["a", "b", "a", None]})
>>> encoder = Encoder.fit(ref, ["x", "c"])
>>> encoder.names
('x', 'x (null)', 'c=a', 'c=b', 'c (other)', 'c (null)')
>>> encoder(pd.DataFrame({"x": [2.0], "c": ["zzz"]})).round(2).tolist()
[[-0.23, -0.58, -1.0, -0.58, 1.0, -0.58]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from regrow.monitor._multivariate_domain import as_numbers, labels_of

__all__ = ["Encoder"]

_TOP = 10  # levels of a label column one-hot encoded; the others share one column


@dataclass(frozen=True)
class Encoder:
    """How to encode each column (see the module docstring), learned from a reference."""

    numeric: tuple[str, ...]
    medians: np.ndarray
    labels: tuple[tuple[str, tuple[str, ...]], ...]
    center: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: Sequence[str]) -> Encoder:
        """The encoding of ``columns`` as ``frame`` holds them."""
        numeric: list[str] = []
        medians: list[float] = []
        labels: list[tuple[str, tuple[str, ...]]] = []
        for col in columns:
            numbers = as_numbers(frame[col])
            if numbers is None:
                labels.append((col, tuple(labels_of(frame[col])[1][:_TOP])))
            else:
                numeric.append(col)
                finite = numbers[~np.isnan(numbers)]
                medians.append(float(np.median(finite)) if len(finite) else 0.0)
        blank = cls(tuple(numeric), np.array(medians), tuple(labels), np.zeros(1), np.ones(1))
        raw = blank.raw(frame)
        scale = raw.std(axis=0) if len(raw) else np.ones(raw.shape[1])
        center = raw.mean(axis=0) if len(raw) else np.zeros(raw.shape[1])
        return cls(
            blank.numeric, blank.medians, blank.labels, center, np.where(scale > 0, scale, 1)
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The encoded columns' names, in order."""
        numeric = (*self.numeric, *(f"{c} (null)" for c in self.numeric))
        labels = [
            (*(f"{c}={v}" for v in levels), f"{c} (other)", f"{c} (null)")
            for c, levels in self.labels
        ]
        return numeric + tuple(name for block in labels for name in block)

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        """``frame``'s encoded values before standardising (rows x :attr:`names`), in
        column-major order (each column is written in one piece)."""
        p = len(self.numeric)
        out = np.empty((len(frame), 2 * p + sum(len(v) + 2 for _, v in self.labels)), order="F")
        for i, col in enumerate(self.numeric):
            values = _numbers(frame[col])
            null = np.isnan(values)
            out[:, i] = np.where(null, self.medians[i], values)
            out[:, p + i] = null
        at = 2 * p
        for col, levels in self.labels:
            _one_hot(frame[col], levels, out[:, at : at + len(levels) + 2])
            at += len(levels) + 2
        return out

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        """``frame``'s encoded values, standardised as the reference's were."""
        out = self.raw(frame)
        out -= self.center
        out /= self.scale
        return out


def _numbers(values: pd.Series) -> np.ndarray:
    """A column read as numbers: NaN for null and ``inf``; labels that do not parse as NaN."""
    numbers = as_numbers(values)
    if numbers is None:  # labels where the reference had numbers: those that parse count
        parsed = pd.to_numeric(values.astype(object), errors="coerce")
        numbers = np.asarray(parsed, dtype=np.float64)
    return np.where(np.isfinite(numbers), numbers, np.nan)


def _one_hot(values: pd.Series, levels: tuple[str, ...], out: np.ndarray) -> None:
    """Fill ``out`` with one column per level, then one for any other value and one for null."""
    codes, names, _ = labels_of(values)
    level = pd.Index(list(levels), dtype=object).get_indexer(pd.Index(names, dtype=object))
    level = np.where(level >= 0, level, len(levels))  # any other value
    at = np.where(codes >= 0, level[np.maximum(codes, 0)] if len(names) else 0, len(levels) + 1)
    out[:] = 0.0
    out[np.arange(len(values)), at] = 1.0
