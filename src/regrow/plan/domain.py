"""The multivariate check: can a classifier tell the window's rows from the reference's?

Per-feature drift tests miss a shift in how features go together (a correlation that flips,
each marginal unchanged); a small boosted classifier on all the columns sees it. The planner
runs it only when no single feature drifted and nothing else escalated the plan already: only
then can its answer change the plan (``escalation.unexplained_multivariate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

__all__ = ["DomainCheck", "domain_check"]


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

    Per-feature tests miss a shift in how features go together (a correlation that flips,
    each marginal unchanged); a classifier on all ``columns`` sees it. Up to ``rows`` rows of
    each side, half to fit, half to score; the interval is Hanley and McNeil's.
    """
    from sklearn.metrics import roc_auc_score

    n = min(rows, len(reference), len(window))
    ref = reference[list(columns)].sample(n, random_state=seed)
    win = window[list(columns)].sample(n, random_state=seed + 1)
    X = pd.concat([ref, win], ignore_index=True)
    for col in X.columns:
        if not pd.api.types.is_numeric_dtype(X[col]):
            X[col] = X[col].astype("category")
    y = np.r_[np.zeros(n), np.ones(n)]
    order = np.random.default_rng(seed).permutation(2 * n)
    fit, score = order[:n], order[n:]
    clf = _classifier(seed)
    clf.fit(X.iloc[fit], y[fit])
    auc = float(roc_auc_score(y[score], clf.predict_proba(X.iloc[score])[:, 1]))
    n1 = float(y[score].sum())
    n0 = len(score) - n1
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n0 * n1)
    z = float(norm.ppf(0.5 + confidence / 2))
    half = z * float(np.sqrt(max(var, 0.0)))
    return DomainCheck(auc, auc - half, auc + half, len(score))


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
