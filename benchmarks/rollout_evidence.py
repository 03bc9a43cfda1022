"""How long a rollout's analysis takes to read its evidence, without and with the file cache.

    python benchmarks/rollout_evidence.py [--rows 100000] [--files 50] [--repeats 3]

A shadow rollout of a toy classifier logs ``--rows`` requests (one row each) under lane
``main`` (the stable version) and as many under ``shadow`` (the candidate), in ``--files``
prediction files per lane, every request labelled. Then it times
:func:`regrow.rollout.evidence.read_evidence`, the read each ``regrow rollout step`` makes:

- **no cache**: every file parsed again (a cache of 0 rows: what every step did before);
- **cold**: the first read with a cache (parses every file and keeps its rows);
- **warm, one new file pair**: the next step after one more file per lane arrived (parses two
  files; the labels of every request are still read again, as they may arrive late).

Figures are the median of ``--repeats`` reads, in CPU seconds of this process (what other work
on a shared machine cannot skew; the catalog is SQLite, in process). The script prints a table
and ends with one JSON line of its figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from regrow import Member, System, Workspace
from regrow.catalog.rollouts import Rollouts
from regrow.rollout import machine
from regrow.rollout.evidence import SHADOW, read_evidence
from regrow.rollout.logcache import FileCache
from regrow.serve.predlog import PredictionLog
from regrow.testing import routed_by


def _workspace(home: Path) -> Workspace:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": (x[:, 0] > 0).astype(int)})
    ws = Workspace.init(home)
    train = ws.snapshot(frame, name="train")
    for inputs in (["x1"], ["x1", "x2"]):
        ws.train(System("toy", target="y", components=[
            Member("m", LogisticRegression(), inputs=inputs)]), train)  # fmt: skip
    ws.catalog.move_alias("toy", "live", ws.catalog.get_system_version("toy:v1").id)
    return ws


def _log(ws: Workspace, ids: list[str], at: datetime, rng: np.random.Generator) -> None:
    """One file per lane: the stable version under ``main``, the candidate under ``shadow``."""
    n = len(ids)
    inputs = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    for lane, version in (("main", "toy:v1"), (SHADOW, "toy:v2")):
        predicted = rng.integers(0, 2, size=n).tolist()
        log = PredictionLog(ws.catalog, ws.store, flush_seconds=3600, flush_rows=10**9)
        log.record(system="toy", version=version, lane=lane, request_ids=ids, rows=[0] * n,
                   inputs=inputs, outputs={"predict": predicted, "probabilities": [
                       [1.0 - p, float(p)] for p in predicted]}, classes=[0, 1], at=at,
                   rollout=routed_by(ws, "toy"))  # fmt: skip
        log.close()
    ws.feedback("toy", [(i, 0, int(rng.integers(0, 2))) for i in ids])


def _median(read: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.process_time()
        read()
        times.append(time.process_time() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        ws = _workspace(Path(tmp) / "ws")
        r = machine.start(ws, "toy:v2", alias="live", mode="shadow", min_requests=100)
        at = datetime.now(UTC) + timedelta(seconds=1)
        per = args.rows // args.files
        t = time.perf_counter()
        for f in range(args.files):
            _log(ws, [f"r{f}-{i}" for i in range(per)], at, rng)
        setup = time.perf_counter() - t
        record = Rollouts(ws.catalog).get(r.id)

        def fresh() -> object:
            return read_evidence(ws.catalog, ws.store, record, cache=FileCache(max_rows=0))

        none = _median(fresh, args.repeats)
        colds, warms = [], []
        for k in range(args.repeats):
            cache = FileCache()
            t = time.process_time()
            ev = read_evidence(ws.catalog, ws.store, record, cache=cache)
            colds.append(time.process_time() - t)
            _log(ws, [f"new{k}-{i}" for i in range(per)], at, rng)
            t = time.process_time()
            after = read_evidence(ws.catalog, ws.store, record, cache=cache)
            warms.append(time.process_time() - t)
            assert after.paired is not None
            assert ev.paired is not None
            assert len(after.paired) == len(ev.paired) + per
        ws.close()
    figures = {
        "rows_per_lane": args.rows, "files_per_lane": args.files,
        "no_cache_s": round(none, 3), "cold_s": round(statistics.median(colds), 3),
        "warm_one_new_file_s": round(statistics.median(warms), 3),
        "speedup": round(none / statistics.median(warms), 2), "setup_s": round(setup, 1),
    }  # fmt: skip
    print(f"shadow rollout, {args.rows} labelled requests a lane in {args.files} files a lane")
    print(f"{'read':<28}{'CPU s':>10}")
    for name, key in (("no cache (before)", "no_cache_s"), ("cold cache", "cold_s"),
                      ("warm, one new file a lane", "warm_one_new_file_s")):  # fmt: skip
        print(f"{name:<28}{figures[key]:>10.3f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
