"""The tables and the JSON line of ``benchmarks/monitoring_peers.py``.

Per dataset, each estimated metric's mean absolute error over every chunk and its band's
coverage of the realised value on undrifted chunks, per tool; per tool, drift recall and false
alarms over every chunk x feature of the three datasets; each tool's seconds; regrow's whole
monitor on a 50,000-row window. The JSON line holds the same figures (rounded to 4 places).
"""

from __future__ import annotations

import json
from typing import Any

import _peers_scoring as scoring

Facts = dict[str, dict[str, list[dict[str, Any]]]]
_TIE = 1e-6  # relative: errors closer than this are the same estimate up to float rounding


def nannyml_estimates(run: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """NannyML's per-chunk ``{metric: (value, low, high)}`` and its own realised values."""
    est = [{m: (v["value"], v["low"], v["high"]) for m, v in c.items()} for c in run["estimates"]]
    real = [{m: v["realised"] for m, v in c.items()} for c in run["estimates"]]
    return est, real


def _r(value: Any) -> Any:
    return None if value is None or value != value else round(float(value), 4)


def estimate_table(
    facts: Facts, ours: dict[str, dict[str, Any]], peers: dict[str, Any], size: int
) -> dict[str, Any]:
    """Print per dataset each metric's error and coverage per tool; return the figures."""
    out: dict[str, Any] = {"worse": [], "realised_gap": 0.0, "datasets": {}}
    coverage = []
    for name, by_setup in facts.items():
        chunks = [c for s in by_setup for c in by_setup[s]]
        if any(ours[name][s]["estimates"] is None for s in by_setup):
            print(f"\n{name}: regrow estimates unavailable: {ours[name]['holdout']['error']}")
            continue
        tools = {
            "regrow": scoring.estimate_figures(
                chunks, [e for s in by_setup for e in ours[name][s]["estimates"]]
            )
        }
        if "nannyml" in peers:
            est: list[dict[str, Any]] = []
            real: list[dict[str, Any]] = []
            for s, setup_chunks in by_setup.items():
                run = peers["nannyml"][name][s]
                if run["bounds"] != [c["bounds"] for c in setup_chunks]:
                    raise SystemExit(f"{name} {s}: NannyML chunked the window differently")
                e, r = nannyml_estimates(run)
                est, real = est + e, real + r
            tools["nannyml"] = scoring.estimate_figures(chunks, est)
            gaps = [
                abs(c["realised"][m] - v)
                for c, theirs in zip(chunks, real, strict=True)
                for m, v in theirs.items()
                if v is not None and m in c["realised"]
            ]
            out["realised_gap"] = max([out["realised_gap"], *gaps])
        undrifted = sum(not c["drifted"] for c in chunks)
        kind = "DLE" if "rmse" in tools["regrow"] else "CBPE"
        print(f"\n{name}: {kind}, {len(chunks)} chunks of {size:,} ({undrifted} undrifted)")
        head = "".join(f"{t + ' MAE':>14}{t + ' cover':>14}" for t in tools)
        print(f"{'metric':<44}{head}")
        table: dict[str, Any] = {}
        for m, mine in tools["regrow"].items():
            cells = "".join(
                f"{tools[t].get(m, {}).get('mae', float('nan')):>14.4f}"
                f"{tools[t].get(m, {}).get('coverage_undrifted', float('nan')):>14.1%}"
                for t in tools
            )
            print(f"{m:<44}{cells}")
            row = {f"{t}_mae": _r(tools[t].get(m, {}).get("mae")) for t in tools}
            row |= {
                f"{t}_coverage": _r(tools[t].get(m, {}).get("coverage_undrifted")) for t in tools
            }
            table[m] = row
            coverage.append(mine["coverage_undrifted"])
            theirs = tools.get("nannyml", {}).get(m)
            if theirs is not None and mine["mae"] > theirs["mae"] * (1 + _TIE):
                excess = mine["mae"] / theirs["mae"] - 1
                out["worse"].append(f"{name}:{m} +{excess:.1%}")
        missing = sorted(set(tools.get("nannyml", {})) - set(tools["regrow"]))
        if missing:
            print(f"  estimated by NannyML only: {', '.join(missing)}")
        out["datasets"][name] = table
    out["coverage_undrifted"] = _r(sum(coverage) / len(coverage)) if coverage else None
    return out


def drift_table(
    facts: Facts,
    ours: dict[str, dict[str, Any]],
    peers: dict[str, Any],
) -> dict[str, Any]:
    """Print recall and false alarms per tool over every dataset; return the figures."""
    runs: dict[str, Any] = {
        "regrow": ours,
        **{p: peers[p] for p in ("nannyml", "evidently") if p in peers},
    }
    out: dict[str, Any] = {}
    print("\nper-feature drift, every chunk x feature of the three datasets")
    print(f"{'tool':<12}{'recall':>16}{'false alarms':>18}{'marginal found':>16}")
    for tool, results in runs.items():
        total: dict[str, float] = {}
        for name, by_setup in facts.items():
            for s, chunks in by_setup.items():
                part = scoring.drift_figures(
                    [c["truth"] for c in chunks], results[name][s]["drift"]
                )
                total = scoring.add_drift(total, part)
        recall = total["found"] / total["drifted"]
        print(
            f"{tool:<12}{recall:>9.1%} ({total['found']:.0f}/{total['drifted']:.0f})"
            f"{total['false_alarms']:>11.0f} / {total['undrifted']:.0f}"
            f"{total['marginal_found']:>10.0f} / {total['marginal']:.0f}"
        )
        out[tool] = {
            "recall": _r(recall),
            "false_alarms": int(total["false_alarms"]),
            "undrifted_cells": int(total["undrifted"]),
            "drifted_cells": int(total["drifted"]),
            "marginal_found": int(total["marginal_found"]),
        }
    return out


def seconds(ours: dict[str, dict[str, Any]], peers: dict[str, Any]) -> dict[str, Any]:
    """Each tool's total seconds over every dataset and setup (fit and run)."""
    out = {"regrow": sum(sum(r["seconds"].values()) for d in ours.values() for r in d.values())}
    if "nannyml" in peers:
        runs = [r for d in peers["nannyml"].values() for r in d.values()]
        out["nannyml"] = sum(sum(r["seconds"].values()) for r in runs)
    if "evidently" in peers:
        out["evidently"] = sum(
            r["seconds"] for d in peers["evidently"].values() for r in d.values()
        )
    return {k: _r(v) for k, v in out.items()}


def headline(datasets: dict[str, Any], drift: dict[str, Any]) -> dict[str, Any]:
    """The issue's figures: the largest regrow / NannyML error ratio over the metrics both
    estimate (CBPE on the classifiers, DLE's RMSE and MAE on car prices; None without NannyML),
    and each tool's drift recall and false alarms."""

    def ratio(pairs: list[tuple[float, float]]) -> float | None:
        found = [a / b for a, b in pairs if b]
        return _r(max(found)) if found else None

    cbpe = [
        (f["regrow_mae"], f["nannyml_mae"])
        for name, metrics in datasets.items()
        if name != "car_price"
        for f in metrics.values()
        if f.get("nannyml_mae") is not None
    ]
    dle = [(f["regrow_mae"], f["nannyml_mae"]) for m, f in datasets.get("car_price", {}).items()
           if m in ("rmse", "mae") and f.get("nannyml_mae") is not None]  # fmt: skip
    return {
        "cbpe_mae_ratio": ratio(cbpe),
        "dle_mae_ratio": ratio(dle),
        "drift_recall": {t: (drift.get(t) or {}).get("recall") for t in TOOLS},
        "drift_false_alarms": {t: (drift.get(t) or {}).get("false_alarms") for t in TOOLS},
    }


TOOLS = ("regrow", "nannyml", "evidently")


def report(
    facts: Facts,
    ours: dict[str, dict[str, Any]],
    peers: dict[str, Any],
    monitor_s: float | None,
    monitor_note: str,
    quick: bool,
    size: int,
) -> None:
    """Print the tables and the JSON line of the figures."""
    est = estimate_table(facts, ours, peers, size)
    drift = drift_table(facts, ours, peers)
    timing = seconds(ours, peers)
    print(f"\nseconds (drift and estimates, fit and run, all chunks): {timing}")
    if "nannyml" in peers:
        print(f"largest gap between NannyML's realised values and ours: {est['realised_gap']:.2e}")
    print(f"regrow CBPE/DLE band coverage on undrifted chunks: {est['coverage_undrifted']}")
    print(f"regrow metrics with a larger error than NannyML's: {est['worse'] or 'none'}")
    shown = "n/a" if monitor_s is None else f"{monitor_s:.2f} s"
    print(f"regrow monitor_predictions on the binary analysis window: {shown} ({monitor_note})")
    figures = {
        **headline(est["datasets"], drift),
        "quick": quick,
        "estimates": est["datasets"],
        "estimates_worse_than_nannyml": est["worse"] if "nannyml" in peers else None,
        "regrow_coverage_undrifted": est["coverage_undrifted"],
        "realised_gap": _r(est["realised_gap"]) if "nannyml" in peers else None,
        "drift": drift,
        "nannyml": drift.get("nannyml"),
        "evidently": drift.get("evidently"),
        "seconds": timing,
        "monitor_50k_s": _r(monitor_s),
    }
    print(json.dumps(figures))
