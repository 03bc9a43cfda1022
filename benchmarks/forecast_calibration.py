"""Are the forecast's probabilities calibrated? Simulated metric histories (issue #18).

    python benchmarks/forecast_calibration.py [--first-seed 0] [--histories 200]

Each history is one system's ROC AUC over ``WINDOWS`` daily windows, drawn from its own seed
(``first-seed`` .. ``first-seed + histories - 1``). The design was fixed before any result was
seen; the method was tuned on seeds 1000-1199 and is reported on seeds 0-199.

- **The true metric**: a base AUC uniform in [0.82, 0.90], plus a slow random walk (0.0015 per
  window), plus one scenario: *stationary* (30 %), *slowly degrading* (25 %: from a window
  uniform in [0, 40], a fall of 0.0005-0.004 per window), *step change* (25 %: at a window
  uniform in [5, 55], a lasting drop of 0.01-0.07) or *transient dip* (20 %: at a window
  uniform in [5, 55], a drop of 0.02-0.07 for 2-6 windows, then back).
- **What the monitor reports**: each window has 1,500-5,000 rows (log-uniform) with 25 %
  positives; its AUC is measured with the Hanley-McNeil standard error at the true AUC.
  With a labelling delay of ``DELAY`` windows, the newest windows at a forecast are CBPE
  estimates (noise 1.3 times larger); the others realised values. The band each point states
  is mis-stated by a factor uniform in [0.9, 1.1] (realised: a bootstrap) or [0.8, 1.25]
  (estimated), and 2 % of the windows have no value (NaN).
- **Forecasts**: at windows ``CUTS`` (every window from 10 to 53) the history so far is
  forecast ``HORIZON`` windows ahead against the SLA ``THRESHOLD`` (direction ``below``); the
  event is that the *true* metric is below the threshold in one of the next ``HORIZON``
  windows (what the forecast is about: the metric, not one window's noisy reading).

The cuts were every other window until 2026-12-01. With those 4,400 forecasts the middle
deciles held 40-60 cases each, and a perfectly calibrated forecaster of the same probabilities
showed a max gap of 0.110 (median over 1,000 draws of the outcomes): above the goal, so the
figure could not tell a calibrated forecaster from one that is not. Every window as a cut
doubles the cases (the floor is 0.076); the forecaster was not changed with it. Consecutive
cuts of one history are not independent, so the true floor is higher than the one printed.

Forecasts are binned by their probability into ten bins of width 0.1; for each bin the table
shows the mean forecast probability, the observed rate of the event and the count. The figure
is the largest gap between the two over the bins with at least ``MIN_CASES`` cases (goal <=
0.1). BLAS/OpenMP threads are pinned to one. Ends with one JSON line of the figures.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402  (thread pinning must precede the numpy import)
import json  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

import numpy as np  # noqa: E402

from regrow.forecast import MetricPoint, forecast  # noqa: E402

WINDOWS = 60
CUTS = tuple(range(10, 54))
HORIZON = 7
THRESHOLD = 0.80
DELAY = 3
PREVALENCE = 0.25
MIN_CASES = 20
SCENARIOS = ("stationary", "degrading", "step", "dip")
SCENARIO_P = (0.30, 0.25, 0.25, 0.20)


def hanley_mcneil(auc: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The standard error of an AUC measured on ``rows`` rows with PREVALENCE positives."""
    n1 = rows * PREVALENCE
    n0 = rows - n1
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    return np.asarray(np.sqrt(var))


def history(seed: int) -> dict[str, object]:
    """One simulated history: its scenario, true metric, rows, noise and band factors."""
    rng = np.random.default_rng(seed)
    t = np.arange(WINDOWS)
    scenario = str(rng.choice(SCENARIOS, p=SCENARIO_P))
    truth = rng.uniform(0.82, 0.90) + np.cumsum(rng.normal(0, 0.0015, WINDOWS))
    if scenario == "degrading":
        onset = rng.uniform(0, 40)
        truth -= rng.uniform(0.0005, 0.004) * np.clip(t - onset, 0, None)
    elif scenario == "step":
        truth -= rng.uniform(0.01, 0.07) * (t >= rng.integers(5, 56))
    elif scenario == "dip":
        start = rng.integers(5, 56)
        truth -= rng.uniform(0.02, 0.07) * ((t >= start) & (t < start + rng.integers(2, 7)))
    truth = np.clip(truth, 0.55, 0.99)
    rows = np.exp(rng.uniform(np.log(1500), np.log(5000), WINDOWS)).astype(int)
    se = hanley_mcneil(truth, rows)
    return {
        "scenario": scenario,
        "truth": truth,
        "rows": rows,
        "se": se,
        "z": rng.standard_normal(WINDOWS),  # the reading's noise, in units of its sd
        "realised_band": rng.uniform(0.9, 1.1, WINDOWS),
        "estimated_band": rng.uniform(0.8, 1.25, WINDOWS),
        "missing": rng.uniform(size=WINDOWS) < 0.02,
    }


def points_at(h: dict[str, object], cut: int) -> list[MetricPoint]:
    """What the monitor has reported for windows ``0..cut-1`` when window ``cut`` begins."""
    truth, rows, se, z = (np.asarray(h[k]) for k in ("truth", "rows", "se", "z"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[MetricPoint] = []
    for i in range(cut):
        estimated = i >= cut - DELAY
        sd = se[i] * (1.3 if estimated else 1.0)
        band = np.asarray(h["estimated_band" if estimated else "realised_band"])[i]
        value = float("nan") if np.asarray(h["missing"])[i] else float(truth[i] + sd * z[i])
        half = 1.96 * sd * band
        source = "estimated" if estimated else "realised"
        at = start + timedelta(days=i)
        out.append(MetricPoint(at, value, value - half, value + half, source, int(rows[i])))
    return out


def max_gap(p: np.ndarray, hit: np.ndarray) -> float | None:
    """The largest |mean p - observed rate| over the bins with at least MIN_CASES cases."""
    bins = np.minimum((p * 10).astype(int), 9)
    gaps = [
        abs(float(p[bins == b].mean()) - float(hit[bins == b].mean()))
        for b in range(10)
        if (bins == b).sum() >= MIN_CASES
    ]
    return max(gaps) if gaps else None


def noise_floor(p: np.ndarray, rng: np.random.Generator, draws: int = 1000) -> tuple[float, float]:
    """The max gap (median, 90th percentile) of outcomes drawn as Bernoulli(p): what sampling
    alone gives a perfectly calibrated forecaster with these probabilities (cases taken as
    independent, which consecutive cuts of one history are not: the true floor is higher)."""
    found = [max_gap(p, rng.uniform(size=len(p)) < p) or 0.0 for _ in range(draws)]
    return float(np.median(found)), float(np.quantile(found, 0.9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--histories", type=int, default=200)
    args = parser.parse_args()
    began = time.perf_counter()
    cases: list[tuple[float, bool, str]] = []
    seconds: list[float] = []
    for seed in range(args.first_seed, args.first_seed + args.histories):
        h = history(seed)
        truth = np.asarray(h["truth"])
        for cut in CUTS:
            tick = time.perf_counter()
            f = forecast(
                points_at(h, cut), threshold=THRESHOLD, direction="below", horizon=HORIZON,
                seed=seed,
            )  # fmt: skip
            seconds.append(time.perf_counter() - tick)
            assert f.probability is not None, f.notes
            happened = bool((truth[cut : cut + HORIZON] < THRESHOLD).any())
            cases.append((f.probability, happened, str(h["scenario"])))
    p = np.array([c[0] for c in cases])
    hit = np.array([c[1] for c in cases], float)
    bins = np.minimum((p * 10).astype(int), 9)
    print(f"{len(cases)} forecasts: seeds {args.first_seed}-{args.first_seed + args.histories - 1}"
          f", cuts {list(CUTS)}, horizon {HORIZON}, threshold {THRESHOLD}")  # fmt: skip
    print(f"{'bin':>9} {'mean p':>8} {'observed':>9} {'n':>5} {'gap':>6}")
    gaps: list[float] = []
    used = 0
    for b in range(10):
        sel = bins == b
        n = int(sel.sum())
        if n == 0:
            print(f"{b / 10:4.1f}-{(b + 1) / 10:3.1f} {'':>8} {'':>9} {0:5d}")
            continue
        gap = abs(float(p[sel].mean()) - float(hit[sel].mean()))
        mark = "" if n >= MIN_CASES else "  (too few to count)"
        print(f"{b / 10:4.1f}-{(b + 1) / 10:3.1f} {p[sel].mean():8.3f} {hit[sel].mean():9.3f} "
              f"{n:5d} {gap:6.3f}{mark}")  # fmt: skip
        if n >= MIN_CASES:
            gaps.append(gap)
            used += 1
    floor = noise_floor(p, np.random.default_rng(args.first_seed))
    print(
        f"a perfectly calibrated forecaster of these probabilities shows a max gap of "
        f"{floor[0]:.3f} (median; 90th percentile {floor[1]:.3f}) from sampling alone"
    )
    brier = float(np.mean((p - hit) ** 2))
    print(f"base rate {hit.mean():.3f}; Brier score {brier:.4f} "
          f"(always the base rate: {float(np.mean((hit.mean() - hit) ** 2)):.4f})")  # fmt: skip
    for name in SCENARIOS:
        sel = np.array([c[2] == name for c in cases])
        if sel.any():
            print(f"  {name:<10} n {int(sel.sum()):4d}  mean p {p[sel].mean():.3f}  "
                  f"observed {hit[sel].mean():.3f}")  # fmt: skip
    total = time.perf_counter() - began
    print(f"{total:.1f} s in all; {1000 * float(np.median(seconds)):.1f} ms per forecast (median)")
    print(
        json.dumps(
            {
                "forecast_calibration_max_gap": round(max(gaps), 4) if gaps else None,
                "deciles_used": used,
                "cases": len(cases),
                "noise_floor_median": round(floor[0], 4),
                "brier": round(brier, 4),
                "first_seed": args.first_seed,
                "seconds": round(total, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
