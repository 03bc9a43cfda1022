"""The regrow side of ``benchmarks/serving.py``: the workspace, its config, and the hot-swap run.

:func:`make_workspace` trains one system, ``bench`` (one Member: a
``HistGradientBoostingClassifier`` on 20 float columns ``f0..f19``, seeded synthetic data),
twice (two versions that differ in their seed and number of iterations, same signature), and
points ``champion`` at the first. The first version's fitted estimator is written with joblib
for MLServer and the bare FastAPI endpoint: the same object regrow serves, less its
``feature_names_in_`` (those servers pass NumPy arrays, and scikit-learn would warn on every
call otherwise).

:func:`swap_run` sends a fixed number of requests under load while this process moves the alias
back and forth through the Python API (``force=True`` with a reason); a move is made once the
load has reached its share of the requests (the moves are spread over the first 80 % of them)
and the server shows the previous move (its model metadata names the new version), so every
move is a real swap under traffic.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _serving_load as load
import numpy as np

FEATURES = [f"f{i}" for i in range(20)]
SYSTEM = "bench"


def data(rows: int, seed: int) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, len(FEATURES)))
    logit = x[:, 0] + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] ** 2 + 0.3 * x[:, 4:].sum(axis=1)
    y = (logit + rng.standard_normal(rows) > 0).astype(np.int64)
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["y"] = y
    return frame


@dataclass(frozen=True)
class Setup:
    home: Path
    refs: tuple[str, str]  # the two versions the alias moves between
    estimator_path: Path  # v1's fitted estimator, for MLServer and the FastAPI endpoint
    row: list[float]  # the row every request sends


def make_workspace(folder: Path, rows: int = 20_000) -> Setup:
    """Train v1 and v2 of ``bench``; ``champion`` -> v1; v1's estimator saved with joblib."""
    import joblib
    from sklearn.ensemble import HistGradientBoostingClassifier

    from regrow import Member, System, Workspace

    home = folder / "ws"
    refs = []
    with Workspace.init(home) as ws:
        snap = ws.snapshot(data(rows, 0), name="train", target="y")
        for seed, iters in ((0, 100), (1, 90)):
            est = HistGradientBoostingClassifier(max_iter=iters, random_state=seed)
            system = System(SYSTEM, target="y", components=[Member("m", est, inputs=FEATURES)])
            refs.append(ws.train(system, snap).version.ref)
        ws.promote(refs[0], "champion", force=True, reason="serving benchmark: first holder")
        fitted = ws.load(refs[0]).components["m"].estimator
    if hasattr(fitted, "feature_names_in_"):
        del fitted.feature_names_in_
    estimator_path = folder / "model.joblib"
    joblib.dump(fitted, estimator_path)
    row = [round(float(v), 6) for v in data(1, 7)[FEATURES].iloc[0]]
    return Setup(home, (refs[0], refs[1]), estimator_path, row)


def write_serve_config(home: Path, *, log_predictions: bool, poll_seconds: float) -> None:
    """Set the workspace's ``[serve]`` section (replacing any there)."""
    path = home / "config.toml"
    text = path.read_text()
    if "[serve]" in text:
        text = text[: text.index("[serve]")]
    text = text.rstrip() + (
        f'\n\n[serve]\nmodels = ["{SYSTEM}@champion"]\npoll_seconds = {poll_seconds}\n'
        f"log_predictions = {str(log_predictions).lower()}\n"
    )
    path.write_text(text)


def served_version(port: int) -> str | None:
    url = f"http://127.0.0.1:{port}/v2/models/{SYSTEM}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            meta = json.loads(resp.read())
        return str(meta.get("parameters", {}).get("system_version"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class SwapResult:
    result: load.Result
    moves: list[tuple[int, str]]  # (perf_counter_ns when promote returned, version ref)
    delays_s: list[float]  # per move: until the first response from the new version
    unseen: int  # moves whose version never answered a request
    windows_mask: np.ndarray  # requests overlapping a swap (move until switch + 100 ms)


def swap_run(
    setup: Setup, port: int, request: bytes, *, requests: int, moves: int, concurrency: int
) -> SwapResult:
    """``requests`` requests at ``concurrency`` while the alias makes ``moves`` moves."""
    import multiprocessing.pool

    from regrow import Workspace

    progress = load.new_progress()
    pool = multiprocessing.pool.ThreadPool(1)
    pending = pool.apply_async(
        lambda: load.run(
            port, request, concurrency=concurrency, requests=requests, warmup_s=0.0,
            tag=True, progress=progress,
        )
    )  # fmt: skip
    made: list[tuple[int, str]] = []
    with Workspace.open(setup.home) as ws:
        for i in range(1, moves + 1):
            target = setup.refs[i % 2]
            # spread over the first 80 % of the requests, so the last move is served too
            while progress.value < i * requests * 4 // (5 * moves) and not pending.ready():
                time.sleep(0.005)
            deadline = time.monotonic() + 10
            while made and served_version(port) != made[-1][1] and time.monotonic() < deadline:
                time.sleep(0.01)  # the previous move has not been picked up yet
            if pending.ready():
                break
            ws.promote(target, "champion", force=True, reason=f"serving benchmark: swap {i}")
            made.append((time.perf_counter_ns(), target))
    result: load.Result = pending.get()
    pool.close()
    return _analyse(result, made)


def _analyse(result: load.Result, made: list[tuple[int, str]]) -> SwapResult:
    order = np.argsort(result.starts_ns)
    starts, ends = result.starts_ns[order], (result.starts_ns + result.latencies_ns)[order]
    tags = result.tags[order]
    names = result.tag_names
    delays, unseen = [], 0
    mask = np.zeros(len(starts), dtype=bool)
    for at, ref in made:
        ids = [i for i, n in enumerate(names) if n == ref]
        hit = np.nonzero((starts >= at) & np.isin(tags, ids))[0]
        if not len(hit):
            unseen += 1
            continue
        switch = int(ends[hit[0]])
        delays.append((switch - at) / 1e9)
        mask |= (ends >= at) & (starts <= switch + 100_000_000)
    unsorted_mask = np.zeros_like(mask)
    unsorted_mask[order] = mask
    return SwapResult(result, made, delays, unseen, unsorted_mask)
