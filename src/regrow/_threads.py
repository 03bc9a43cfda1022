"""One OpenMP thread for small data: the rule every small boosted model of regrow fits under.

On a few thousand rows, gradient boosting's OpenMP threads cost more than they save, and on a
busy machine their spin-waiting makes a fit 10-50 times slower than one thread (measured on a
2-core machine: DLE's fit 0.1 s -> 7 s; the multivariate check's scikit-learn classifier
0.1 s -> 30 s while two other processes ran). LightGBM takes its thread count per call
(``n_jobs``/``num_threads``) instead, and regrow's small LightGBM models pass 1.

>>> with small_data_threads(1_000):
...     pass
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["ONE_THREAD_BELOW", "small_data_threads"]

#: Rows under which a boosted model is fitted and read with one OpenMP thread.
ONE_THREAD_BELOW = 50_000


def small_data_threads(n_rows: int) -> Any:
    """A context with one OpenMP thread when ``n_rows`` is under :data:`ONE_THREAD_BELOW`,
    else one that changes nothing."""
    if n_rows < ONE_THREAD_BELOW:
        from threadpoolctl import threadpool_limits  # no type info

        return threadpool_limits(limits=1, user_api="openmp")
    return contextlib.nullcontext()
