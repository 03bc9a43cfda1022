"""`regrow reproduce` on every version the demo makes: does each come out the same?

The demo (``regrow demo``'s flow, :func:`regrow.demo.run_demo`) trains churn:v1 on six months
of history, then plans and runs a partial update, churn:v2, on drifted recent rows. Each
version is then rebuilt from its record in a scratch workspace (:func:`regrow.reproduce.
reproduce`): every component refitted from its recorded snapshot, seed, recipe and code, and
compared with the original -- the fingerprint recomputed now, the artifact's bytes, and where
those differ its outputs on up to 5,000 training rows (tolerance 1e-6).

A version counts as reproduced when every component is ``identical`` (same bytes) or
``equivalent`` (same outputs within the tolerance). Threads are pinned to one, as in the demo.

Run: ``python benchmarks/governance_reproduce.py``. Prints one row per component, then one
JSON line: ``{"reproduced": "N/N", ...}`` (versions reproduced / versions).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

from threadpoolctl import threadpool_limits

from regrow import Workspace
from regrow.demo import run_demo
from regrow.reproduce import ReproduceReport, reproduce


def reproduce_demo(*, seed: int = 0) -> tuple[int, int]:
    """(versions whose every component matched, versions) over every version the demo makes."""
    reproduced, versions, _reports = _run(seed)
    return reproduced, versions


def _run(seed: int) -> tuple[int, int, list[ReproduceReport]]:
    with (
        tempfile.TemporaryDirectory(prefix="regrow-bench-") as folder,
        threadpool_limits(1),
        Workspace.init(os.path.join(folder, "ws")) as ws,
    ):
        run_demo(ws, seed=seed)
        refs = [v.ref for v in reversed(ws.catalog.list_system_versions())]
        reports = [reproduce(ws, ref) for ref in refs]
    return sum(r.reproduced for r in reports), len(reports), reports


def main() -> None:
    started = time.perf_counter()
    reproduced, versions, reports = _run(seed=0)
    print(f"{'version':<10} {'component':<16} {'verdict':<11} {'fingerprint':<12} "
          f"{'bytes':<7} {'max diff':>9}")  # fmt: skip
    for report in reports:
        for c in report:
            diff = "-" if c.max_diff is None else f"{c.max_diff:.3g}"
            print(
                f"{report.version:<10} {c.name:<16} {c.verdict:<11} "
                f"{'same' if c.fingerprint_matches else 'differs':<12} "
                f"{'same' if c.bytes_match else 'differ':<7} {diff:>9}"
            )
            for reason in c.reasons:
                print(f"{'':<28}{reason}")
        print(f"{report.version}: {report.counts} in {report.seconds:.1f} s")
    figures: dict[str, Any] = {
        "reproduced": f"{reproduced}/{versions}",
        "components": sum(len(r.components) for r in reports),
        "identical": sum(r.counts["identical"] for r in reports),
        "equivalent": sum(r.counts["equivalent"] for r in reports),
        "differs": sum(r.counts["differs"] for r in reports),
        "reproduce_s": round(sum(r.seconds for r in reports), 2),
        "total_s": round(time.perf_counter() - started, 2),
    }
    print(json.dumps(figures))
    sys.exit(0 if reproduced == versions else 1)


if __name__ == "__main__":
    main()
