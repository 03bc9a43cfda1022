"""Serving: regrow serve against the model's own predict, a bare FastAPI endpoint and MLServer.

    python benchmarks/serving.py [--quick] [--concurrency 32] [--requests 10000]
        [--seconds 5] [--repeats 3] [--mlserver-python PATH | --setup-mlserver DIR]
        [--py-spy PATH] [--profile | --profile-only]

Scenario (issue #14): one scikit-learn model, a ``HistGradientBoostingClassifier`` on 20 float
features trained on seeded synthetic data, as the regrow system ``bench`` (one Member, alias
``champion``) in a temporary workspace; the same fitted estimator saved with joblib for MLServer
(mlserver-sklearn) and for a bare FastAPI endpoint. Every server runs on core 0 (``taskset -c 0``,
one BLAS/OpenMP thread); the load generator (``_serving_load.py``: a closed loop of keep-alive
connections on raw asyncio protocols over uvloop) and this process run on core 1. Every server
gets the same Open Inference Protocol v2 REST body: one FP64 tensor of shape [1, 20] with the
column names in its parameters, asking for the ``predict`` output.

Every server is up at once (idle but the one measured), and ``--repeats`` rounds each measure
every server in turn, so that other work on the machine hits them alike; figures are medians
over the rounds. While a server is loaded, its CPU time is sampled from ``/proc``: the table
shows the share of core 0 it got, and requests per CPU-second (what other work on a shared
machine cannot skew; on a quiet machine it equals requests per second). Measured:

- the generator's own capacity against a trivial endpoint (no framework, no model);
- in-process, on core 0: ``estimator.predict_proba`` and regrow's ``FittedSystem.predict_proba``
  on one row; **added latency** = regrow's median one-row latency at 1 client minus the
  estimator's;
- throughput at ``--concurrency`` clients: the bare FastAPI endpoint; MLServer 1.7.1 (own venv,
  ``--mlserver-python`` or ``$MLSERVER_PYTHON``, or ``--setup-mlserver DIR`` to create one) in
  each configuration of ``_serving_servers.MLSERVER_CONFIGS`` (parallel workers 0/1, adaptive
  batching sizes and times), the best of which is the baseline; regrow with the prediction log
  on and off (``[serve] log_predictions``), so **logging_cost** = 1 - on/off;
- **hot swap**: ``--requests`` requests at ``--concurrency`` clients while this process moves
  ``champion`` 20 times between two versions (``Workspace.promote(..., force=True)``,
  ``poll_seconds = 0.1``): failed requests, p99 latency of the requests in flight during a swap
  (from the move until the first answer from the new version, plus 100 ms), and the delay;
- with ``--profile`` or when a goal is missed and py-spy is found (``--py-spy``, ``$PY_SPY``):
  where regrow's server spends its core under load (``_serving_profile.py``), at
  ``--concurrency`` clients, and at 1 when the added latency is missed; ``--profile-only``
  does only that (a quick loop for whoever works on the server).

Goals (issue #14): added latency <= 1 ms, throughput >= 1.5x MLServer's best, 0 failed requests
across the swaps, logging cost <= 10 %. Ends with one JSON line of the figures: the six of the
issue first, then the throughputs behind them and the same ratios per CPU-second.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the _serving_* helpers

import argparse  # noqa: E402  (thread pinning must precede the numpy import)
import contextlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import _serving_load as load  # noqa: E402
import _serving_profile as profile  # noqa: E402
import _serving_regrow as rg  # noqa: E402
import _serving_servers as servers  # noqa: E402
import numpy as np  # noqa: E402

INFER = f"/v2/models/{rg.SYSTEM}/infer"
SERVER_CORE, LOAD_CORE = 0, 1


@dataclass
class Options:
    seconds: float
    warmup: float
    repeats: int
    concurrency: int

    def run(
        self, server: servers.Server, request: bytes, concurrency: int, seconds: float
    ) -> tuple[load.Result, float]:
        """A load run, and the share of its core the server got during it (CPU s per s)."""
        with servers.CpuMeter(server.pid) as meter:
            r = load.run(
                server.port, request, concurrency=concurrency, seconds=seconds,
                warmup_s=self.warmup, cores=[LOAD_CORE],
            )  # fmt: skip
        bad = r.statuses != 200
        if bad.any():
            raise RuntimeError(f"{int(bad.sum())} of {len(bad)} requests failed on {server.name}")
        start = int(r.starts_ns.min())
        return r, meter.share(start, int((r.starts_ns + r.latencies_ns).max()))


def body(row: list[float]) -> bytes:
    tensor = {
        "name": "features", "shape": [1, len(row)], "datatype": "FP64", "data": [row],
        "parameters": {"columns": rg.FEATURES},
    }  # fmt: skip
    return json.dumps({"inputs": [tensor], "outputs": [{"name": "predict"}]}).encode()


def model_times(setup: rg.Setup, n: int = 3000) -> tuple[float, float, int]:
    """Median ms of one-row ``predict_proba`` (estimator on NumPy, regrow's system on a
    DataFrame), and the estimator's ``predict`` for the row."""
    import joblib
    import pandas as pd

    from regrow import Workspace

    estimator = joblib.load(setup.estimator_path)
    with Workspace.open(setup.home) as ws:
        system = ws.load(f"{rg.SYSTEM}@champion")
    x = np.asarray([setup.row])
    frame = pd.DataFrame(x, columns=rg.FEATURES)

    def timed(f: Any) -> float:
        for _ in range(200):
            f()
        times = []
        for _ in range(n):
            t = time.perf_counter_ns()
            f()
            times.append(time.perf_counter_ns() - t)
        return float(np.median(times)) / 1e6

    os.sched_setaffinity(0, {SERVER_CORE})  # where the servers run, idle now
    try:
        est = timed(lambda: estimator.predict_proba(x))
        fitted = timed(lambda: system.predict_proba(frame))
    finally:
        os.sched_setaffinity(0, {LOAD_CORE})
    return est, fitted, int(estimator.predict(x)[0])


def answer(port: int, payload: bytes) -> Any:
    """The ``predict`` output a server gives for the benchmark's row (a sanity check)."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{INFER}", data=payload,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as resp:
        out = json.loads(resp.read())
    return next(o["data"] for o in out["outputs"] if o["name"] == "predict")


def start_servers(
    stack: contextlib.ExitStack, setup: rg.Setup, python: str | None, configs: list[str],
    folder: Path,
) -> dict[str, servers.Server]:  # fmt: skip
    """Every server of the comparison, up at once (idle but the one measured)."""
    up: dict[str, servers.Server] = {}

    def start(name: str, server: servers.Server) -> None:
        try:
            up[name] = stack.enter_context(server)
        except RuntimeError as exc:
            print(f"{name}: not measured ({exc})", flush=True)

    port = servers.free_port()
    start(
        "trivial",
        servers.Server("trivial", servers.reference_cmd("trivial", port), port, ready="/"),
    )
    port = servers.free_port()
    cmd = servers.reference_cmd("fastapi", port, setup.estimator_path)
    start("fastapi", servers.Server("fastapi", cmd, port, ready="/v2/health/ready"))
    for config in configs:
        assert python is not None
        port = servers.free_port()
        root = servers.write_mlserver_models(folder, setup.estimator_path, config, port)
        ready = f"/v2/models/{rg.SYSTEM}/ready"
        cmd = servers.mlserver_cmd(python, root)
        start(f"mlserver {config}", servers.Server("mlserver", cmd, port, ready=ready))
    for log in (True, False):  # the config is read at start: one server each
        start(f"regrow log {'on' if log else 'off'}", regrow_server(setup, log=log, poll=2.0))
    return up


def regrow_server(setup: rg.Setup, *, log: bool, poll: float) -> servers.Server:
    rg.write_serve_config(setup.home, log_predictions=log, poll_seconds=poll)
    port = servers.free_port()
    cmd = servers.regrow_cmd(setup.home, port)
    return servers.Server(f"regrow-log-{log}", cmd, port, ready="/v2/health/ready")


def rounds(
    up: dict[str, servers.Server], request: bytes, opts: Options
) -> dict[str, dict[str, list[float]]]:
    """``opts.repeats`` rounds; each measures every server in turn, so a change in the
    machine's background load hits them alike, and then regrow without and with the log once
    more (on, off, off, on: the logging cost is a small difference between two close
    numbers, so it gets twice the runs and a drift in the machine cancels out)."""
    out: dict[str, dict[str, list[float]]] = {n: {"rps": [], "p50": [], "cpu": []} for n in up}
    for i in range(opts.repeats):
        for name, s in up.items():
            try:
                r, cpu = opts.run(s, request, opts.concurrency, opts.seconds)
                p50 = opts.run(s, request, 1, min(opts.seconds, 3.0))[0].ms(50)
            except RuntimeError as exc:
                print(f"  {name}: {exc}\n{s.tail()}", flush=True)
                continue
            out[name]["rps"].append(r.rps())
            out[name]["cpu"].append(cpu)
            out[name]["p50"].append(p50)
        pair = [n for n in ("regrow log off", "regrow log on") if n in up]
        for name in pair if len(pair) == 2 else []:  # on, off, off, on: drift cancels out
            r, cpu = opts.run(up[name], request, opts.concurrency, opts.seconds)
            out[name]["rps"].append(r.rps())
            out[name]["cpu"].append(cpu)
        print(f"  round {i + 1}/{opts.repeats}: " + ", ".join(
            f"{n} {v['rps'][-1]:.0f}" for n, v in out.items() if v["rps"]), flush=True)  # fmt: skip
    return {n: v for n, v in out.items() if v["rps"]}


def mlserver_python(args: argparse.Namespace) -> str | None:
    if args.setup_mlserver:
        print(f"creating MLServer's environment in {args.setup_mlserver} ...", flush=True)
        return str(servers.setup_mlserver(Path(args.setup_mlserver)))
    return args.mlserver_python or os.environ.get("MLSERVER_PYTHON")


def run_profile(py_spy: str, setup: rg.Setup, request: bytes, opts: Options, c: int) -> None:
    with regrow_server(setup, log=True, poll=2.0) as s, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        seconds = max(opts.seconds, 6.0)
        kept = Path(os.environ.get("TMPDIR", "/tmp")) / f"serving-bench-profile-c{c}.txt"
        load.run(s.port, request, concurrency=c, seconds=1, warmup_s=0, cores=[LOAD_CORE])
        res = profile.record(
            py_spy, s.pid, out, seconds, profile.RATE,
            lambda: load.run(s.port, request, concurrency=c, seconds=seconds, warmup_s=0),
        )  # fmt: skip
        print(f"\nprofile of regrow serve (log on) at {c} client(s), {seconds:.0f} s, "
              f"{res.rps():.0f} req/s under py-spy (raw stacks: {kept}):")  # fmt: skip
        for line in profile.summary(out, rate=profile.RATE, requests=len(res.statuses)):
            print("  " + line)
        if out.exists():
            shutil.copy(out, kept)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def runs(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=None, help="hot-swap requests (10000)")
    parser.add_argument("--moves", type=int, default=20, help="alias moves in the swap run")
    parser.add_argument("--seconds", type=float, default=None, help="per measurement (5)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (3)")
    parser.add_argument("--mlserver-python", default=None)
    parser.add_argument("--setup-mlserver", default=None, metavar="DIR")
    parser.add_argument("--py-spy", default=os.environ.get("PY_SPY") or shutil.which("py-spy"))
    parser.add_argument("--profile", action="store_true", help="profile regrow serve anyway")
    parser.add_argument(
        "--profile-only", action="store_true", help="only profile regrow serve (at 1 client and "
        "--concurrency), skipping every comparison",
    )  # fmt: skip
    args = parser.parse_args()
    quick = args.quick
    opts = Options(
        seconds=args.seconds or (2.0 if quick else 5.0), warmup=0.5 if quick else 1.0,
        repeats=args.repeats or (1 if quick else 3), concurrency=args.concurrency,
    )  # fmt: skip
    requests = args.requests or (2000 if quick else 10_000)
    moves = min(args.moves, 6) if quick and args.moves == 20 else args.moves
    if len(os.sched_getaffinity(0)) < 2 or SERVER_CORE not in os.sched_getaffinity(0):
        raise SystemExit("this benchmark needs cores 0 and 1 (server on 0, load on 1)")
    os.sched_setaffinity(0, {LOAD_CORE})
    python = mlserver_python(args)
    configs = list(servers.MLSERVER_CONFIGS)
    if quick:
        configs = [c for c in configs if c in ("workers=0", "workers=0 batch=32/2ms")]

    print(f"machine: {os.cpu_count()} cores; every server pinned to core {SERVER_CORE}, the load "
          f"generator and this process to core {LOAD_CORE}; BLAS/OpenMP threads = 1; load "
          f"average at start {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{opts.repeats} rounds; per server and round: {opts.concurrency} clients for "
          f"{opts.seconds:.0f} s, then 1 client for {min(opts.seconds, 3.0):.0f} s, each after "
          f"{opts.warmup:.1f} s warm-up; medians over rounds")  # fmt: skip
    figures: dict[str, Any] = {
        "added_latency_ms_p50": None, "throughput_ratio_vs_mlserver": None,
        "swap_requests": requests, "swap_failures": None, "swap_p99_ms": None,
        "logging_cost": None,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        setup = rg.make_workspace(tmp)
        payload = body(setup.row)
        request = load.request_bytes(INFER, payload)
        print(f"model: HistGradientBoostingClassifier(max_iter=100), 20 float features; body "
              f"{len(payload)} bytes (FP64 [1, 20] + columns, output predict)")  # fmt: skip
        est_ms, sys_ms, label = model_times(setup)
        print(f"in-process on core {SERVER_CORE}, one row: estimator.predict_proba "
              f"{est_ms:.3f} ms, regrow FittedSystem.predict_proba {sys_ms:.3f} ms")  # fmt: skip
        if args.profile_only:
            if not args.py_spy:
                raise SystemExit("--profile-only needs py-spy (--py-spy PATH or $PY_SPY)")
            run_profile(args.py_spy, setup, request, opts, 1)
            run_profile(args.py_spy, setup, request, opts, opts.concurrency)
            return
        if not python:
            print("MLServer: skipped (give --mlserver-python PATH or --setup-mlserver DIR)")
        with contextlib.ExitStack() as stack:
            up = start_servers(stack, setup, python, configs if python else [], tmp / "mlserver")
            for name, s in up.items():
                if name != "trivial" and answer(s.port, payload) != [label]:
                    raise SystemExit(f"{name} answers {answer(s.port, payload)}, not [{label}]")
            print(f"every model server answers predict [{label}] for the row, as the estimator")
            res = rounds(up, request, opts)
        figures.update(report(res, est_ms))
        if figures["regrow_rps"] is not None:
            figures.update(swap(setup, request, requests, moves, opts))
            added, ratio = figures["added_latency_ms_p50"], figures["throughput_ratio_vs_mlserver"]
            missed = (
                added > 1 or (ratio is not None and ratio < 1.5) or figures["logging_cost"] > 0.1
            )
            if args.py_spy and (args.profile or missed):
                run_profile(args.py_spy, setup, request, opts, opts.concurrency)
                if added > 1 or args.profile:
                    run_profile(args.py_spy, setup, request, opts, 1)
    busy = os.getloadavg()[0]
    note = " (the machine was busy with other work: figures are noisy)" if busy > 1.5 else ""
    print(f"load average at the end {busy:.2f}{note}")
    print(json.dumps(figures))


def report(res: dict[str, dict[str, list[float]]], est_ms: float) -> dict[str, Any]:
    """The table of the rounds, and the figures it gives."""
    rps = {n: med(v["rps"]) for n, v in res.items()}
    p50 = {n: med(v["p50"]) for n, v in res.items()}
    share = {n: med(v["cpu"]) for n, v in res.items()}
    per_cpu = {
        n: med([r / c for r, c in zip(v["rps"], v["cpu"], strict=True)]) for n, v in res.items()
    }
    print(f"\n{'server':<32}{'req/s':>7}{'core':>6}{'req/CPU-s':>10}{'1-client p50':>14}"
          f"{'added':>7}  runs (req/s)")  # fmt: skip
    for n, v in res.items():
        over = "" if n == "trivial" else f"{p50[n] - est_ms:+.2f}"
        print(f"{n:<32}{rps[n]:7.0f}{share[n]:6.2f}{per_cpu[n]:10.0f}{p50[n]:11.3f} ms"
              f"{over:>7}  {runs(v['rps'])}")  # fmt: skip
    print("(core: the share of core 0 the server got while loaded, from its CPU time; "
          "req/CPU-s = req/s / core: what other work on the machine cannot skew; a trivial "
          "endpoint's core below 1 means the load generator is its limit)")  # fmt: skip
    ml = {n: r for n, r in rps.items() if n.startswith("mlserver")}
    best = max(ml, key=lambda n: ml[n]) if ml else None
    if best:
        print(f"MLServer's best: {best.removeprefix('mlserver ')}, {ml[best]:.0f} req/s")
    out: dict[str, Any] = {
        "mlserver_best_config": best.removeprefix("mlserver ") if best else None,
        "mlserver_best_rps": round(ml[best]) if best else None,
        "fastapi_rps": round(rps["fastapi"]) if "fastapi" in rps else None,
        "loadgen_capacity_rps": round(rps["trivial"]) if "trivial" in rps else None,
        "model_predict_ms": round(est_ms, 3), "regrow_rps": None,
    }  # fmt: skip
    if "regrow log on" not in rps or "regrow log off" not in rps:
        return out
    on, off = rps["regrow log on"], rps["regrow log off"]
    added = p50["regrow log on"] - est_ms
    ratio = on / ml[best] if best else None
    ml_cpu = max((per_cpu[n] for n in ml), default=None)
    ratio_cpu = per_cpu["regrow log on"] / ml_cpu if ml_cpu else None
    cost_cpu = 1 - per_cpu["regrow log on"] / per_cpu["regrow log off"]
    print(f"regrow: added latency {added:.2f} ms at the median (goal <= 1); logging cost "
          f"{1 - on / off:.1%} ({cost_cpu:.1%} per CPU-s; goal <= 10 %)"
          + (f"; {ratio:.2f}x MLServer's best ({ratio_cpu:.2f}x per CPU-s; goal >= 1.5)"
             if ratio and ratio_cpu else ""))  # fmt: skip
    out.update(
        added_latency_ms_p50=round(added, 3), logging_cost=round(1 - on / off, 3),
        throughput_ratio_vs_mlserver=round(ratio, 2) if ratio else None,
        regrow_rps=round(on), regrow_rps_log_off=round(off),
        throughput_ratio_per_cpu=round(ratio_cpu, 2) if ratio_cpu else None,
        logging_cost_per_cpu=round(cost_cpu, 3),
    )  # fmt: skip
    return out


def swap(
    setup: rg.Setup, request: bytes, requests: int, moves: int, opts: Options
) -> dict[str, Any]:
    with regrow_server(setup, log=True, poll=0.1) as s:
        sw = rg.swap_run(
            setup, s.port, request, requests=requests, moves=moves, concurrency=opts.concurrency
        )
    res = sw.result
    failures = int((res.statuses != 200).sum())
    p99 = res.ms(99, sw.windows_mask) if sw.windows_mask.any() else float("nan")
    print(f"hot swap: {len(res.statuses)} requests at {opts.concurrency} clients, "
          f"{len(sw.moves)} moves, {failures} failed, {sw.unseen} moves never answered; p99 "
          f"{res.ms(99):.1f} ms overall, {p99:.1f} ms during swaps "
          f"({int(sw.windows_mask.sum())} requests); move -> first answer from the new "
          f"version: median {med(sw.delays_s):.2f} s, max {max(sw.delays_s, default=0):.2f} s "
          f"(poll 0.1 s)")  # fmt: skip
    return {
        "swap_requests": len(res.statuses), "swap_failures": failures,
        "swap_p99_ms": round(p99, 2) if np.isfinite(p99) else None, "swap_moves": len(sw.moves),
    }  # fmt: skip


if __name__ == "__main__":
    main()
