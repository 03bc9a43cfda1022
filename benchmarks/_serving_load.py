"""A closed-loop HTTP/1.1 load generator for ``benchmarks/serving.py``.

Each of ``concurrency`` keep-alive connections sends the same pre-encoded request, waits for the
whole response, and sends the next one (a closed loop, like wrk's connections). It is built on
raw :class:`asyncio.Protocol` callbacks over uvloop, with no HTTP library on the path: a
response is parsed just far enough to find its status, its length and, when asked, the
``system_version`` it names, so one process on one core drives far more requests per second
than the servers measured here answer (``serving.py`` reports that capacity against a trivial
endpoint).

:func:`run` starts the generator in a separate process pinned to the given cores and returns
per-request arrays: start time (``time.perf_counter_ns``, one clock for every process on Linux,
so the benchmark can line requests up with the alias moves it makes), latency, HTTP status (0
for a broken connection: counted as a failure, then the connection is opened again), and the
index of the version tag seen in the body (-1 for none).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from functools import partial
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import numpy as np

_TAG = b'"system_version":"'


@dataclass(frozen=True)
class Result:
    """What one load run saw: arrays aligned by request, in completion order."""

    starts_ns: np.ndarray
    latencies_ns: np.ndarray
    statuses: np.ndarray
    tags: np.ndarray
    tag_names: list[str]
    window_s: float  # the measured window (after the warm-up), for the request rate

    def rps(self) -> float:
        """Successful requests per second in the measured window."""
        return float((self.statuses == 200).sum()) / self.window_s if self.window_s else 0.0

    def ms(self, q: float, mask: np.ndarray | None = None) -> float:
        """A latency percentile in milliseconds (over ``mask`` if given)."""
        lat = self.latencies_ns if mask is None else self.latencies_ns[mask]
        return float(np.percentile(lat, q)) / 1e6 if len(lat) else float("nan")


def request_bytes(path: str, body: bytes, host: str = "127.0.0.1") -> bytes:
    """A POST request (or a GET when ``body`` is empty) to send as it is, again and again."""
    if not body:
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Load:
    def __init__(
        self, request: bytes, limit: int | None, deadline: float, tag: bool, progress: Any
    ) -> None:
        self.request, self.limit, self.deadline, self.tag = request, limit, deadline, tag
        self.progress = progress
        self.issued = 0
        self.starts: list[int] = []
        self.lats: list[int] = []
        self.statuses: list[int] = []
        self.tags: list[int] = []
        self.tag_ids: dict[bytes, int] = {}

    def more(self) -> bool:
        if self.limit is not None and self.issued >= self.limit:
            return False
        return time.perf_counter() < self.deadline

    def record(self, start: int, status: int, body: bytes) -> None:
        end = time.perf_counter_ns()
        self.starts.append(start)
        self.lats.append(end - start)
        self.statuses.append(status)
        tag = -1
        if self.tag:
            at = body.find(_TAG)
            if at >= 0:
                at += len(_TAG)
                name = body[at : body.find(b'"', at)]
                tag = self.tag_ids.setdefault(name, len(self.tag_ids))
        self.tags.append(tag)
        if self.progress is not None and len(self.lats) % 50 == 0:
            self.progress.value = len(self.lats)


class _Conn(asyncio.Protocol):
    def __init__(self, load: _Load, done: asyncio.Future[None]) -> None:
        self.load, self.done = load, done
        self.buf = b""
        self.start = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        if not self.load.more():
            assert self.transport is not None
            self.transport.close()
            return
        self.load.issued += 1
        self.start = time.perf_counter_ns()
        assert self.transport is not None
        self.transport.write(self.load.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower() + b"\r\n"
        at = head.find(b"content-length:")
        if at < 0:  # not expected from the servers measured here
            raise RuntimeError(f"response without content-length: {head[:200]!r}")
        length = int(head[at + 15 : head.find(b"\r\n", at)])
        if len(self.buf) < end + 4 + length:
            return
        status = int(head[9:12])
        body = self.buf[end + 4 : end + 4 + length]
        self.buf = self.buf[end + 4 + length :]
        self.load.record(self.start, status, body)
        self.start = 0
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.start and self.load.more():  # the server dropped a request: a failure
            self.load.record(self.start, 0, b"")
        if not self.done.done():
            self.done.set_result(None)


async def _drive(host: str, port: int, load: _Load, concurrency: int) -> None:
    loop = asyncio.get_running_loop()

    async def slot() -> None:  # one connection at a time; a dropped one is opened again
        while load.more():
            done: asyncio.Future[None] = loop.create_future()
            try:
                await loop.create_connection(partial(_Conn, load, done), host, port)
            except OSError:  # refused: a failed request
                load.issued += 1
                load.record(time.perf_counter_ns(), 0, b"")
                await asyncio.sleep(0.01)
                continue
            await done

    await asyncio.gather(*(slot() for _ in range(concurrency)))


def _child(conn: Any, cores: list[int], args: dict[str, Any], progress: Any) -> None:
    os.sched_setaffinity(0, cores)
    import uvloop

    warmup = args.pop("warmup_s")
    t0 = time.perf_counter()
    load = _Load(
        args["request"], args["requests"], t0 + warmup + args["seconds"], args["tag"], progress
    )
    uvloop.run(_drive(args["host"], args["port"], load, args["concurrency"]))
    starts = np.asarray(load.starts, dtype=np.int64)
    lats = np.asarray(load.lats, dtype=np.int64)
    keep = starts >= int((t0 + warmup) * 1e9)
    ends = starts[keep] + lats[keep]
    window = (ends.max() - starts[keep].min()) / 1e9 if keep.any() else 0.0
    names = [k.decode() for k, _ in sorted(load.tag_ids.items(), key=lambda kv: kv[1])]
    tags = np.asarray(load.tags, dtype=np.int32)
    statuses = np.asarray(load.statuses, dtype=np.int32)
    conn.send((starts[keep], lats[keep], statuses[keep], tags[keep], names, float(window)))
    conn.close()


def run(
    port: int,
    request: bytes,
    *,
    concurrency: int = 1,
    seconds: float = 5.0,
    requests: int | None = None,
    warmup_s: float = 1.0,
    cores: list[int] | None = None,
    tag: bool = False,
    progress: Synchronized[int] | None = None,
    host: str = "127.0.0.1",
) -> Result:
    """Load ``host:port`` with ``request`` from a process pinned to ``cores`` (default: core 1).

    Runs ``warmup_s`` seconds unrecorded, then ``seconds`` (or until ``requests`` were sent,
    warm-up included when ``warmup_s`` is 0).
    """
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    args = {
        "host": host, "port": port, "request": request, "concurrency": concurrency,
        "seconds": seconds if requests is None else 1e9, "requests": requests,
        "warmup_s": warmup_s, "tag": tag,
    }  # fmt: skip
    proc = ctx.Process(target=_child, args=(child, cores or [1], args, progress))
    proc.start()
    child.close()
    try:
        starts, lats, statuses, tags, names, window = parent.recv()
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
    return Result(starts, lats, statuses, tags, names, window)


def new_progress() -> Synchronized[int]:
    """A counter of completed requests, shared with a running generator."""
    return mp.get_context("spawn").Value("q", 0)
