"""A seeded sample of a large window, so that attribution and the probes cost what it costs.

Attribution (:mod:`regrow.monitor.attribution`) predicts every member several times on the
window, and the probes (:mod:`regrow.plan.diagnostics`) fit small models on it: their cost
grows with the window, their precision with the square root of its rows. Above
:data:`IMPACT_ROWS` and :data:`SAMPLE_ROWS` rows they run on a sample: seeded, so the same
window gives the same sample (and the same plan); for classification stratified by label, so
each class keeps its share (unlabelled rows count as a class of their own); in the window's
order. Samples of one frame with one seed are nested: attribution's rows are among the
probes', so the members' outputs on them are predicted once. Intervals computed on a sample
are honest for it: they are as wide as the sample's rows make them, and the plan and the
report say which sample was used.

>>> import pandas as pd
>>> frame = pd.DataFrame({"x": range(10), "y": [0] * 8 + [1] * 2})
>>> sample_rows(frame, 5, by="y").y.tolist()
[0, 0, 0, 0, 1]
>>> set(sample_rows(frame, 3).x) <= set(sample_rows(frame, 6).x)
True
>>> len(sample_rows(frame, 20))
10
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["IMPACT_ROWS", "SAMPLE_ROWS", "describe_sample", "sample_rows"]

#: The rows the probes use at most (more when ``planning.probe_max_rows`` asks for more).
SAMPLE_ROWS = 8_000
#: The rows attribution uses at most: it predicts each member reading a drifted feature
#: ``n_repeats`` times on them.
IMPACT_ROWS = 4_000


def sample_rows(
    frame: pd.DataFrame, rows: int, *, by: str | None = None, seed: int = 0
) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, seeded, in order; stratified by column ``by``."""
    n = len(frame)
    if n <= rows:
        return frame
    rng = np.random.default_rng(seed)
    if by is None or by not in frame.columns:
        return frame.iloc[np.sort(rng.permutation(n)[:rows])]
    labels = frame[by].astype(object).where(frame[by].notna(), "\0unlabelled")
    codes, _ = pd.factorize(labels, sort=True)
    counts = np.bincount(codes)
    share = counts * rows / n
    take = np.floor(share).astype(int)
    left = rows - int(take.sum())
    if left > 0:  # largest remainders first, ties to the larger class
        order = np.lexsort((-counts, -(share - take)))
        take[order[:left]] += 1
    # One permutation per class, its first rows taken: a smaller sample is inside a larger one.
    orders = [rng.permutation(np.flatnonzero(codes == c)) for c in range(len(counts))]
    chosen = [order[:k] for order, k in zip(orders, take, strict=True)]
    return frame.iloc[np.sort(np.concatenate(chosen))]


def describe_sample(used: int, of: int, what: str, *, stratified: bool, seed: int) -> str:
    """``"8,000 of the 50,000 labelled rows (a sample stratified by label, seed 0)"``."""
    if used >= of:
        return f"the {of:,} {what}"
    how = "stratified by label, " if stratified else ""
    return f"{used:,} of the {of:,} {what} (a sample {how}seed {seed})"
