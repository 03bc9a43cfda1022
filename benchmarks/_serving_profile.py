"""Where a server spends its core under load: py-spy samples, summed by function and by thread.

``py-spy record --format raw`` writes collapsed stacks (``thread;frame;frame... count``, root
first). :func:`record` runs it (pinned to the load generator's core, so it does not take the
server's) against a server while ``load`` runs, and :func:`summary` turns the file into the
lines ``serving.py`` prints: the share of samples per thread, per leaf function (self time) and
per function anywhere on the stack (inclusive time), so a reader can see which part of the
request path costs what. Idle samples are left out (py-spy records only running threads unless
``--idle``), so shares are of the time the server was busy.
"""

from __future__ import annotations

import collections
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


RATE = 250  # samples per second


def record(
    py_spy: str,
    pid: int,
    out: Path,
    seconds: float,
    rate: int,
    load: Callable[[], Any],
    core: int = 1,
) -> Any:
    """Sample ``pid`` (and its children) while ``load()`` runs; its result."""
    cmd = [
        "taskset", "-c", str(core), py_spy, "record", "--pid", str(pid), "--subprocesses",
        "--threads", "--nonblocking", "--rate", str(rate), "--duration", str(int(seconds)),
        "--format", "raw", "--output", str(out),
    ]  # fmt: skip
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        result = load()
    finally:
        try:
            spy.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
    return result


def _split(frame: str) -> tuple[str, str]:
    """(function, file shortened to its package path) of a py-spy frame."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    file = m["file"]
    for marker in ("site-packages/", "/src/", "lib/python3.11/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return m["func"], file


def _package(file: str) -> str:
    parts = file.split("/")
    if parts[0] == "regrow" and len(parts) > 1:
        return "/".join(parts[:2]) if parts[1] != "serve" else "/".join(parts[:3])
    return parts[0] or "?"


def summary(path: Path, *, rate: int, requests: int, top: int = 20) -> list[str]:
    """Readable lines: shares of the busy samples, and CPU milliseconds per request, by
    thread, by package of the running (leaf) frame, for the leaf functions, and for regrow's
    own functions anywhere on the stack (inclusive)."""
    threads: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = stack.split(";")
        # the first entries are "process ..." (with --subprocesses) and "thread (...)"
        head = [f for f in frames[:2] if f.startswith(("process", "thread"))]
        body = [_split(f) for f in frames[len(head) :]]
        threads[head[-1].rsplit(":", 1)[-1].strip() if head else "?"] += count
        if body:
            func, file = body[-1]
            packages[_package(file)] += count
            leaf[f"{func} ({file})"] += count
            for name in {f"{fn} ({fl})" for fn, fl in body if fl.startswith("regrow/")}:
                ours[name] += count
        total += count
    if not total:
        return ["(no samples: is py-spy allowed to attach? it needs ptrace)"]
    per = 1000 / rate / max(requests, 1)  # ms of CPU per request, per sample

    def rows(counter: collections.Counter[str], n: int) -> list[str]:
        return [
            f"  {100 * c / total:5.1f}%  {c * per:6.3f} ms/req  {k}"
            for k, c in counter.most_common(n)
        ]

    out = [
        f"{total} samples at {rate} Hz while busy, {requests} requests: "
        f"{total * per:.3f} ms of CPU per request (the event loop's own C code, uvloop's "
        "socket I/O included, shows as Runner.run / asyncio)"
    ]
    out += ["by thread:", *rows(threads, 6)]
    out += ["by package of the running frame:", *rows(packages, 12)]
    out += [f"running function, top {top}:", *rows(leaf, top)]
    out += [f"regrow's functions, inclusive, top {top}:", *rows(ours, top)]
    return out
