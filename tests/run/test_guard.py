"""The guard process: it kills what it watches when its owner dies, and nothing otherwise."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from regrow.run.guard import Guard

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads processes in /proc"
)

OWNER = """
import subprocess, sys, time
from regrow.run.guard import Guard

sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
guard = Guard()
guard.watch(sleeper.pid)
print(sleeper.pid, guard.pid, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in "ZX"


def gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not any(alive(p) for p in pids)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def ignores_sigint(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


def test_the_guard_kills_what_it_watches_when_its_owner_is_killed() -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE)
    watched: list[int] = []
    try:
        assert owner.stdout is not None
        watched = [int(pid) for pid in owner.stdout.readline().split()]
        assert len(watched) == 2
        assert all(alive(pid) for pid in watched)
        owner.kill()  # SIGKILL: the owner runs no cleanup at all
        owner.wait()
        assert gone_within(watched, 5)  # the sleeper killed, the guard exited
    finally:
        owner.kill()
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
        for pid in watched:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_dismissed_guard_kills_nothing(sleeper: subprocess.Popen[bytes]) -> None:
    guard = Guard()
    guard.watch(sleeper.pid)
    guard.dismiss()
    assert guard.pid is None
    time.sleep(0.3)
    assert sleeper.poll() is None


def test_the_guard_kills_the_children_of_a_server_even_unnamed_ones() -> None:
    server = subprocess.Popen(["sh", "-c", "sleep 120 & sleep 120 & wait"])
    try:
        deadline = time.monotonic() + 5
        while len(children(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        forked = children(server.pid)
        assert len(forked) == 2
        guard = Guard()
        guard.watch(server.pid, server=True)
        guard.abandon()
        assert server.wait(timeout=5) == -signal.SIGKILL
        assert gone_within(forked, 5)
    finally:
        server.kill()
        server.wait()


def test_the_guard_ignores_ctrl_c(sleeper: subprocess.Popen[bytes]) -> None:
    guard = Guard()
    guard.watch(sleeper.pid)
    assert guard.pid is not None
    deadline = time.monotonic() + 10
    while not ignores_sigint(guard.pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # the guard's interpreter is starting
    assert os.getpgid(guard.pid) == guard.pid  # out of reach of the terminal's Ctrl-C
    os.kill(guard.pid, signal.SIGINT)
    time.sleep(0.3)
    assert alive(guard.pid)
    guard.abandon()
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
