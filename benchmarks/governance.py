"""Governance figures in one run: concurrent protected promotions, tampering, gates, reproduce.

Runs the four benchmarks of issue #13 one after the other and ends with their figures as one
JSON line::

    {"lost_moves": 0, "duplicated_moves": 0, "chain_ok": true, "tamper_detected": "200/200",
     "gates_s": .., "reproduced": "N/N"}

- :mod:`governance_promotions`: ``--processes`` processes x ``--promotions`` protected
  promotions each (every version approved by a second identity and blessed against every
  other), on SQLite and, with ``--postgres URL``, on PostgreSQL: moves lost or duplicated, and
  whether the history is one unbroken chain of revisions and the audit chain verifies;
- :mod:`governance_tamper`: ``--tamper`` random single-row alterations, deletions, insertions
  or swaps across every covered table, each checked by ``verify`` (SQLite, and PostgreSQL
  with ``--postgres``);
- :mod:`governance_gates`: every built-in gate on 100,000 rows x 5 slices with 1,000 paired
  resamples (median wall seconds of ``--repeats`` runs);
- :mod:`governance_reproduce`: ``regrow reproduce`` on every version the demo creates.

Run: ``python benchmarks/governance.py [--processes 8] [--promotions 200] [--tamper 200]
[--repeats 5] [--postgres postgresql://postgres@127.0.0.1:5432/test]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import governance_gates
import governance_promotions
import governance_reproduce
import governance_tamper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--promotions", type=int, default=200)
    parser.add_argument("--tamper", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--postgres", default=None, help="also run on this PostgreSQL URL")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    t0 = time.perf_counter()

    urls: dict[str, str | None] = {"sqlite": None}
    schemas: list[str] = []
    if args.postgres:
        from regrow.testing import create_postgres_schema

        schema, url = create_postgres_schema(args.postgres)
        schemas.append(schema)
        urls["postgresql"] = url
    try:
        moves = {
            name: governance_promotions.concurrent_promotions(args.processes, args.promotions, url)
            for name, url in urls.items()
        }
        detected = total = 0
        for name in urls:
            tamper_url = None
            if name == "postgresql":
                from regrow.testing import create_postgres_schema

                schema, tamper_url = create_postgres_schema(args.postgres)
                schemas.append(schema)
            found, n = governance_tamper.tamper_trials(args.tamper, seed=0, url=tamper_url)
            print(f"tampering on {name}: {found}/{n} detected", flush=True)
            detected, total = detected + found, total + n
    finally:
        if schemas:
            from regrow.testing import drop_postgres_schema

            for schema in schemas:
                drop_postgres_schema(args.postgres, schema)
    for name, r in moves.items():
        print(f"promotions on {name}: {r}", flush=True)
    gates_s = governance_gates.measure_gates(repeats=args.repeats)
    print(f"gates: {gates_s:.3f} s", flush=True)
    reproduced, versions = governance_reproduce.reproduce_demo()
    print(f"reproduced: {reproduced}/{versions}", flush=True)
    figures = {
        "lost_moves": sum(r["lost_moves"] for r in moves.values()),
        "duplicated_moves": sum(r["duplicated_moves"] for r in moves.values()),
        "chain_ok": all(
            r["chain_ok"] and r["revisions_contiguous"] and not r["broken_links"]
            for r in moves.values()
        ),
        "tamper_detected": f"{detected}/{total}",
        "gates_s": round(gates_s, 3),
        "reproduced": f"{reproduced}/{versions}",
        "databases": list(urls),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
