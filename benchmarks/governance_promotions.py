"""Concurrent protected promotions: no move lost, none duplicated, and the audit chain verifies.

Several processes promote versions of one system to its protected ``champion`` alias at once,
through ``Workspace.promote`` (role check, the policy's promotion rules checked inside the
move's transaction, compare-and-set on the alias's revision). Every version was approved by a
second identity to replace every other version (an approval is for replacing one holder: the
setup puts each version in place once, by an admin's forced move, while they are given) and
has a blessed evaluation against every other version on a holdout snapshot (recorded through
the catalog, as `regrow evaluate` records one, under the workspace's policy), so every
promotion is allowed and the only way one fails is by losing a race
(:class:`~regrow.errors.AliasConflict`), after which the process reads the alias again and
retries. Afterwards the alias's history must hold exactly the moves the processes reported,
with revisions 1..N each once, each move starting where the one before it ended, and the
audit chain must verify.

Run: ``python benchmarks/governance_promotions.py [--processes 8] [--promotions 200]
[--postgres URL]``; ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

VERSIONS = 6


def _data(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    y = (x[:, 0] + x[:, 1] + 0.5 * rng.normal(size=rows) > 0).astype(int)
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": y})


def setup(home: Path, catalog_url: str | None) -> dict[str, Any]:
    """A workspace with VERSIONS approved versions, blessed against each other."""
    from sklearn.linear_model import LogisticRegression

    from regrow import Member, System, Workspace

    os.environ["REGROW_ACTOR"] = "author"
    with Workspace.init(home, catalog_url=catalog_url) as ws:
        train = ws.snapshot(_data(400, 0), name="train")
        holdout = ws.snapshot(_data(400, 1), name="holdout")
        refs = []
        for i in range(VERSIONS):
            system = System(
                "bench", target="y",
                components=[Member("m", LogisticRegression(C=0.01 * 3**i), inputs=["x1", "x2"])],
            )  # fmt: skip
            refs.append(ws.train(system, train).version)
        ws.add_identity("reviewer", "approver")
        ws.add_identity("releaser", "operator")
        _, reviewer = ws.create_token("reviewer")
        _, releaser = ws.create_token("releaser")
        policy = ws.policy().id
        for a in refs:  # recorded as `regrow evaluate` records them, under the workspace policy
            for b in refs:
                if a.id != b.id:
                    ws.catalog.add_evaluation(
                        candidate_id=a.id, baseline_id=b.id, snapshot_id=holdout.id,
                        metric="roc_auc", results={"policy": policy, "gate_source": "policy"},
                        verdict="blessed", reasons=["benchmark: every pair blessed"],
                    )  # fmt: skip
        # An approval is for replacing the holder of the moment: the admin puts each version
        # in place once (forced) while the reviewer approves every other one to replace it.
        with Workspace.open(home, token=reviewer) as review:
            for holder in refs:
                ws.promote(holder.ref, "champion", force=True, reason="setup")
                for v in refs:
                    if v.id != holder.id:
                        review.approve(v.ref, "champion")
    return {"refs": [v.ref for v in refs], "token": releaser, "setup_moves": len(refs)}


def worker(home: str, token: str, refs: list[str], promotions: int, seed: int) -> dict[str, int]:
    """Make ``promotions`` successful promotions, retrying after each lost race."""
    from regrow import Workspace
    from regrow.errors import AliasConflict, NotFound

    rng = random.Random(seed)
    done = conflicts = 0
    with Workspace.open(home, token=token) as ws:
        ids = {r: ws.catalog.get_system_version(r).id for r in refs}
        while done < promotions:
            try:
                held = ws.catalog.get_alias("bench", "champion")
                holder, revision = held.version_id, held.revision
            except NotFound:
                holder, revision = None, 0
            choice = rng.choice([r for r in refs if ids[r] != holder])
            try:
                ws.promote(choice, "champion", expected_revision=revision, reason=f"w{seed}")
                done += 1
            except AliasConflict:
                conflicts += 1
    return {"done": done, "conflicts": conflicts}


def _run(args: tuple[str, str, list[str], int, int]) -> dict[str, int]:
    return worker(*args)


def check(home: Path, reported: int, setup_moves: int) -> dict[str, Any]:
    """Compare the alias's history with what the workers reported; verify the chain."""
    from regrow import Workspace

    with Workspace.open(home, token="") as ws:
        moves = list(reversed(ws.catalog.alias_history("bench", "champion")))
        revisions = [m.revision for m in moves]
        broken_links = sum(1 for a, b in pairwise(moves) if b.from_version_id != a.to_version_id)
        try:
            events = ws.catalog.verify_audit()
            chain_ok = True
        except Exception as exc:  # reported, not raised
            events, chain_ok = 0, False
            print(f"chain: {exc}")
        alias = ws.catalog.get_alias("bench", "champion")
    return {
        "moves": len(moves) - setup_moves,  # the workers' moves
        "lost_moves": max(0, reported - (len(moves) - setup_moves)),
        "duplicated_moves": (len(revisions) - len(set(revisions)))
        + max(0, len(moves) - setup_moves - reported),
        "revisions_contiguous": revisions == list(range(1, len(moves) + 1))
        and alias.revision == len(moves),
        "broken_links": broken_links,
        "chain_ok": chain_ok,
        "events": events,
    }


def concurrent_promotions(
    processes: int = 8, promotions: int = 200, catalog_url: str | None = None
) -> dict[str, Any]:
    """Run the scenario on a fresh workspace (SQLite, or the PostgreSQL ``catalog_url``)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "ws"
        info = setup(home, catalog_url)
        os.environ["REGROW_ACTOR"] = "nobody"  # the workers act only through their token
        jobs = [(str(home), info["token"], info["refs"], promotions, i) for i in range(processes)]
        t0 = time.perf_counter()
        with mp.get_context("spawn").Pool(processes) as pool:
            results = pool.map(_run, jobs)
        seconds = time.perf_counter() - t0
        reported = sum(r["done"] for r in results)
        out = check(home, reported, info["setup_moves"])
    return {
        **out,
        "reported": reported,
        "conflicts_retried": sum(r["conflicts"] for r in results),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--promotions", type=int, default=200)
    parser.add_argument("--postgres", default=None, help="also run on this PostgreSQL URL")
    args = parser.parse_args()
    runs = {"sqlite": concurrent_promotions(args.processes, args.promotions)}
    if args.postgres:
        from regrow.testing import create_postgres_schema, drop_postgres_schema

        schema, url = create_postgres_schema(args.postgres)
        try:
            runs["postgresql"] = concurrent_promotions(args.processes, args.promotions, url)
        finally:
            drop_postgres_schema(args.postgres, schema)
    for name, r in runs.items():
        print(name, r)
    print(
        json.dumps(
            {
                "lost_moves": sum(r["lost_moves"] for r in runs.values()),
                "duplicated_moves": sum(r["duplicated_moves"] for r in runs.values()),
                "chain_ok": all(r["chain_ok"] and r["revisions_contiguous"] for r in runs.values()),
                "moves": {k: r["moves"] for k, r in runs.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
