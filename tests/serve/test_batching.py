"""Adaptive micro-batching (regrow.serve.batching): one predict call for concurrent requests."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from regrow.serve.batching import Batcher
from regrow.serve.errors import BadRequest


class Recorder:
    """A predict function that doubles ``x`` and records each call's tags and thread."""

    def __init__(self, fail_on: int | None = None, error: type[Exception] = ValueError) -> None:
        self.calls: list[list[Any]] = []
        self.threads: list[int] = []
        self.fail_on = fail_on
        self.error = error

    def __call__(self, columns: Any, tags: list[Any]) -> dict[str, np.ndarray]:
        self.calls.append(list(tags))
        self.threads.append(threading.get_ident())
        if self.fail_on is not None and self.fail_on in columns["x"].tolist():
            raise self.error(f"cannot score {self.fail_on}")
        return {"y": columns["x"] * 2}


def rows(*values: int) -> dict[str, np.ndarray]:
    return {"x": np.array(values)}


def test_requests_queued_together_share_one_call_and_get_their_own_rows() -> None:
    predict = Recorder()
    batcher = Batcher(predict)

    async def main() -> list[dict[str, np.ndarray]]:
        return await asyncio.gather(
            batcher.submit(rows(1), 1, "a"),
            batcher.submit(rows(2, 3), 2, "b"),
            batcher.submit(rows(4), 1, "c"),
        )

    results = asyncio.run(main())
    assert [r["y"].tolist() for r in results] == [[2], [4, 6], [8]]
    assert predict.calls == [["a", "b", "c"]]


def test_a_lone_request_is_scored_at_once() -> None:
    predict = Recorder()
    batcher = Batcher(predict)

    async def main() -> None:
        for i in range(3):
            assert (await batcher.submit(rows(i), 1, i))["y"].tolist() == [2 * i]

    asyncio.run(main())
    assert predict.calls == [[0], [1], [2]]


def test_requests_arriving_during_a_call_are_scored_together_in_the_next() -> None:
    release = threading.Event()
    calls: list[list[Any]] = []

    def slow(columns: Any, tags: list[Any]) -> dict[str, np.ndarray]:
        calls.append(tags)
        if len(calls) == 1:
            release.wait(5)  # the first call runs (in a thread) while the others arrive
        return {"y": columns["x"]}

    batcher = Batcher(slow, inline_rows=0)  # every call in a worker thread

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit(rows(0), 1, "first"))
        await asyncio.sleep(0.05)
        later = [asyncio.ensure_future(batcher.submit(rows(i), 1, f"r{i}")) for i in range(1, 5)]
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(first, *later)

    asyncio.run(main())
    assert calls == [["first"], ["r1", "r2", "r3", "r4"]]


def test_a_call_takes_at_most_max_rows() -> None:
    predict = Recorder()
    batcher = Batcher(predict, max_rows=3)

    async def main() -> None:
        await asyncio.gather(*(batcher.submit(rows(i, i), 2, i) for i in range(4)))

    asyncio.run(main())
    assert predict.calls == [[0], [1], [2], [3]]  # 2 + 2 rows would pass 3


def test_announced_requests_join_the_call_they_were_announced_for() -> None:
    predict = Recorder()
    batcher = Batcher(predict)

    async def announced(i: int, turns: int) -> dict[str, np.ndarray]:
        with batcher.arriving():
            for _ in range(turns):  # reading and decoding its body
                await asyncio.sleep(0)
            future = batcher.enqueue(rows(i), 1, i)
        return await future

    async def main() -> None:
        await asyncio.gather(announced(0, 0), announced(1, 3), announced(2, 5))

    asyncio.run(main())
    assert predict.calls == [[0, 1, 2]]


def test_unannounced_late_requests_wait_for_the_next_call() -> None:
    predict = Recorder()
    batcher = Batcher(predict)

    async def late(i: int, turns: int) -> dict[str, np.ndarray]:
        for _ in range(turns):
            await asyncio.sleep(0)
        return await batcher.submit(rows(i), 1, i)

    async def main() -> None:
        await asyncio.gather(late(0, 0), late(1, 3))

    asyncio.run(main())
    assert predict.calls == [[0], [1]]


def test_a_bad_request_in_a_batch_fails_alone_with_a_400() -> None:
    predict = Recorder(fail_on=2)
    batcher = Batcher(predict)

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(batcher.submit(rows(i), 1, i) for i in range(4)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert isinstance(results[2], BadRequest)
    assert "cannot score 2" in str(results[2])
    assert [r["y"].tolist() for i, r in enumerate(results) if i != 2] == [[0], [2], [6]]
    assert predict.calls[0] == [0, 1, 2, 3]  # tried together, then one by one
    assert predict.calls[1:] == [[0], [1], [2], [3]]


def test_an_error_that_is_not_the_inputs_fault_is_not_a_400() -> None:
    batcher = Batcher(Recorder(fail_on=1, error=RuntimeError))

    async def main() -> None:
        await batcher.submit(rows(1), 1)

    with pytest.raises(RuntimeError, match="cannot score 1"):
        asyncio.run(main())


def test_large_batches_run_in_a_worker_thread_small_ones_on_the_loop() -> None:
    predict = Recorder()
    batcher = Batcher(predict, inline_rows=2)

    async def main() -> None:
        await batcher.submit(rows(1, 2), 2)
        await batcher.submit(rows(1, 2, 3), 3)

    asyncio.run(main())
    loop_thread = threading.get_ident()
    assert predict.threads[0] == loop_thread
    assert predict.threads[1] != loop_thread


def test_a_cancelled_request_does_not_disturb_the_others() -> None:
    predict = Recorder()
    batcher = Batcher(predict)

    async def main() -> list[int]:
        gone = batcher.enqueue(rows(9), 1, "gone")
        kept = batcher.enqueue(rows(1), 1, "kept")
        gone.cancel()
        return (await kept)["y"].tolist()

    assert asyncio.run(main()) == [2]
    assert predict.calls == [["kept"]]
