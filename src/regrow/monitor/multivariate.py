"""Multivariate drift: has how the features go together changed, each marginal aside?

Per-feature drift tests miss a correlation that flips while every marginal stays the same.
Two methods see it, each with a threshold calibrated so that an undrifted window crosses it
with probability about ``1 - level``, and a practical margin below which a difference is not
flagged:

======================  ===========================================  ==============================
method                  statistic                                    threshold (no-drift value)
======================  ===========================================  ==============================
``domain_classifier``   held-out AUC of a small boosted classifier   ``0.5 + z * SE0`` (0.5);
                        of window vs reference rows                  drifted above ``0.5 + margin``
``pca_reconstruction``  the window's mean distance of rows to the    ``m + z' * s * sqrt(1/n+1/h)``
                        reference's main PCA components              (``m``; ``z'``: ``z``
                                                                     corrected for skew); drifted
                                                                     above ``m * (1 + margin)``
======================  ===========================================  ==============================

``z`` is the one-sided normal quantile of ``level`` (0.99 by default), ``n`` the window's rows,
``h`` the reference's held-out rows, ``SE0`` the AUC's standard error without drift.

The details live in :mod:`regrow.monitor._multivariate_domain` (:func:`domain_classifier`,
and :func:`domain_check`, the planner's form) and :mod:`regrow.monitor._multivariate_pca`
(:class:`PCAReconstruction`); the result, :class:`MultivariateDrift`, in
:mod:`regrow.monitor._multivariate_base`. :func:`multivariate_drift` runs them on the whole
window and on each chunk (:mod:`regrow.monitor.chunks`). Each result's level holds for that
result alone: over many chunks, expect about ``1 - level`` of undrifted ones to be flagged
(fewer, thanks to the margin).

Bad input, decided per case:

=========================================  ====================================================
case                                       result
=========================================  ====================================================
a column missing from the window           read as all null (as the version reads it); ``why``
                                           names it
a column missing from the reference        :class:`~regrow.errors.DataError` naming it
a window (or chunk) of fewer than 20 rows  ``drifted=False``, ``why`` "too few rows", NaN values
a reference of fewer than 20 rows (40 for  :class:`~regrow.errors.DataError`
PCA: half fits, half calibrates)
nulls, ``inf``, labels, booleans, times    encoded (see each method); never an error. Times
                                           are compared as numbers: a window's time column
                                           always lies after the reference's, so leave it out
=========================================  ====================================================

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(4000, 2))
>>> ref = pd.DataFrame({"a": x[:, 0], "b": x[:, 0] + 0.3 * x[:, 1]})
>>> flipped = ref.assign(b=-ref["b"])  # each marginal unchanged
>>> [(r.method, r.drifted) for r in multivariate_drift(ref, flipped, ["a", "b"])]
[('domain_classifier', True), ('pca_reconstruction', True)]
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import pandas as pd

from regrow.data._compute import parallel_map
from regrow.errors import ConfigError
from regrow.monitor._multivariate_base import MultivariateDrift
from regrow.monitor._multivariate_domain import DomainCheck, domain_check, domain_classifier
from regrow.monitor._multivariate_pca import PCAReconstruction
from regrow.monitor.chunks import Chunk

__all__ = [
    "METHODS",
    "DomainCheck",
    "MultivariateDrift",
    "PCAReconstruction",
    "domain_check",
    "domain_classifier",
    "multivariate_drift",
]

METHODS = ("domain_classifier", "pca_reconstruction")


def multivariate_drift(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    columns: Sequence[str],
    *,
    chunks: Sequence[Chunk] = (),
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    reference_key: Hashable | None = None,
) -> list[MultivariateDrift]:
    """Each method's result on the whole window (``chunk=None``), then on each chunk.

    ``chunks`` hold positions into ``window`` (see :meth:`~regrow.monitor.chunks.Chunking.split`);
    the PCA is fitted once on the reference. Results come scope by scope, in the order of
    ``methods`` within a scope. With ``reference_key``, which must identify the reference's
    rows, the fitted PCA is kept for the process (:data:`regrow.monitor.shared.PCA_FITS`,
    keyed by it, ``columns``, ``seed`` and the PCA's parameters): the next window with the
    same reference does not fit it again.

    >>> import numpy as np, pandas as pd
    >>> from regrow.monitor.chunks import Chunking
    >>> ref = pd.DataFrame({"a": np.random.default_rng(0).normal(size=1000)})
    >>> win = pd.DataFrame({"a": np.random.default_rng(1).normal(size=400)})
    >>> results = multivariate_drift(ref, win, ["a"], chunks=Chunking(count=2).split(win))
    >>> [(r.chunk, r.method, r.drifted) for r in results]  # doctest: +NORMALIZE_WHITESPACE
    [(None, 'domain_classifier', False), (None, 'pca_reconstruction', False),
     ('rows 0-199', 'domain_classifier', False), ('rows 0-199', 'pca_reconstruction', False),
     ('rows 200-399', 'domain_classifier', False), ('rows 200-399', 'pca_reconstruction', False)]
    """
    chosen = list(dict.fromkeys(methods))
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        raise ConfigError(
            f"unknown multivariate method(s) {', '.join(map(repr, unknown))}"
            if unknown
            else "no multivariate method chosen",
            hint=f"choose among {', '.join(map(repr, METHODS))}",
        )
    pca = None
    if "pca_reconstruction" in chosen:
        unfitted = PCAReconstruction(seed=seed)
        if reference_key is None:
            pca = unfitted.fit(reference, columns)
        else:
            from regrow.monitor.shared import PCA_FITS

            key = ("pca", reference_key, tuple(reference.columns), tuple(columns), repr(unfitted))
            pca = PCA_FITS.get(key, lambda: unfitted.fit(reference, columns))
    scopes: list[tuple[str | None, pd.DataFrame]] = [(None, window)]
    scopes += [(chunk.label, window.iloc[chunk.index]) for chunk in chunks]

    def scope(item: tuple[str | None, pd.DataFrame]) -> list[MultivariateDrift]:
        label, frame = item
        found = []
        for method in chosen:
            if method == "domain_classifier":
                found.append(domain_classifier(reference, frame, columns, seed=seed, chunk=label))
            elif pca is not None:
                found.append(pca.check(frame, chunk=label))
        return found

    # Scopes on threads: the classifier's fits (one thread each) release the GIL.
    done = parallel_map(scope, scopes, cells=len(window) * max(len(columns), 1))
    return [result for found in done for result in found]
