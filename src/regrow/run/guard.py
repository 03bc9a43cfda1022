"""A guard process: it kills the processes it watches when the process that started it dies.

:class:`Guard` starts ``python -I -S guard.py`` (no site, no regrow: it starts in
milliseconds and needs a few MB) with a pipe from its owner on stdin. The owner names each
process to guard as it starts it (``server PID`` for a process that forks others, ``worker
PID`` for the rest) and sends ``done`` when it has stopped them itself. End of input without
``done`` means the owner died: the kernel closed its end of the pipe, ``kill -9`` and the OOM
killer included. The guard then

1. stops each server (SIGSTOP, so it forks nothing more) and SIGKILLs every child it has,
   such as a worker forked in the instant before the owner died, before it was named;
2. SIGKILLs the servers and every worker it was told about.

Each pid is signalled through a pidfd opened when the guard learnt it (Linux), so a pid that
was reused since is never hit. SIGKILL needs nothing from its target: it works while a worker
still imports its modules or holds the GIL in a long C call. The guard runs in a process group
of its own and ignores SIGINT: Ctrl-C is for the owner, which then stops its processes itself.

This module imports only the standard library: the guard runs it as a script.

>>> import subprocess, sys
>>> sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
>>> guard = Guard()
>>> guard.watch(sleeper.pid)
>>> guard.abandon()  # as if the owner died: the guard kills what it watches
>>> sleeper.wait(timeout=10)
-9
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

__all__ = ["Guard", "descendants"]

_STOP_WAIT = 1.0  # seconds to wait for a server to stop before listing its children


class Guard:
    """The owner's side: start the guard, name processes to it, dismiss it.

    If the guard cannot start, :meth:`watch` does nothing: guarding is a safety net, never
    a reason to fail. A guard dropped without :meth:`dismiss` is dismissed when it is
    garbage-collected (what it watched is being shut down with its owner object).
    """

    def __init__(self) -> None:
        try:
            self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-I", "-S", __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,  # the guard holds none of its owner's pipes
                process_group=0,  # nor gets the terminal's Ctrl-C, even while it starts
            )
        except OSError:
            self._process = None
        self._dismiss_on_collect = weakref.finalize(self, _say_last, self._process, b"done\n")
        self._watched: set[int] = set()

    def __repr__(self) -> str:
        pid = self._process.pid if self._process is not None else None
        return f"Guard(pid={pid}, watching={len(self._watched)})"

    @property
    def pid(self) -> int | None:
        """The guard process's pid (None if it did not start)."""
        return self._process.pid if self._process is not None else None

    def watch(self, pid: int, *, server: bool = False) -> None:
        """Kill ``pid`` if the owner dies; a ``server``'s children too (see the module)."""
        if pid in self._watched:
            return
        self._send(b"%s %d\n" % (b"server" if server else b"worker", pid))
        self._watched.add(pid)

    def dismiss(self) -> None:
        """The owner stopped its processes: end the guard without killing anything."""
        self._end(b"done\n")

    def abandon(self) -> None:
        """End the guard as the owner's death would: it kills every process it watches."""
        self._end(b"")

    def _send(self, data: bytes) -> None:
        process = self._process
        if process is None or process.stdin is None:
            return
        try:
            process.stdin.write(data)
            process.stdin.flush()
        except (OSError, ValueError):  # the guard is gone, or was just dismissed
            self._process = None

    def _end(self, last: bytes) -> None:
        self._dismiss_on_collect.detach()
        process, self._process = self._process, None
        _say_last(process, last)


def _say_last(process: subprocess.Popen[bytes] | None, last: bytes) -> None:
    """Send the guard its ``last`` words, close its input and wait for it to exit."""
    if process is None or process.stdin is None:
        return
    with contextlib.suppress(OSError, ValueError):
        process.stdin.write(last)
        process.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def descendants(pid: int) -> set[int]:
    """The processes descended from ``pid`` now: children, theirs, and so on (Linux: /proc;
    elsewhere none)."""
    parents: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for entry in Path("/proc").glob("[0-9]*"):
            fields = _stat(int(entry.name))
            if len(fields) > 1:
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


# -- the guard process ------------------------------------------------------------------------


def _open(pid: int) -> int | None:
    pidfd_open = getattr(os, "pidfd_open", None)  # Linux >= 5.3
    if pidfd_open is None:
        return None
    try:
        fd: int = pidfd_open(pid)
    except OSError:  # gone already, or no pidfds here
        return None
    return fd


def _signal(pid: int, fd: int | None, signum: int) -> None:
    try:
        if fd is not None:
            signal.pidfd_send_signal(fd, signum)
        else:
            os.kill(pid, signum)
    except OSError:  # exited meanwhile
        pass


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name ([] if it is gone or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat[stat.rindex(")") + 2 :].split()


def _children(pids: set[int]) -> list[int]:
    """The pids whose parent is one of ``pids`` (none without /proc)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in Path("/proc").glob("[0-9]*"):
            fields = _stat(int(entry.name))
            if len(fields) > 1 and int(fields[1]) in pids:
                found.append(int(entry.name))
    return found


def _stop_and_kill_children(servers: dict[int, int | None]) -> None:
    if not servers:
        return
    for pid, fd in servers.items():
        _signal(pid, fd, signal.SIGSTOP)
    deadline = time.monotonic() + _STOP_WAIT
    while time.monotonic() < deadline and any(
        (_stat(pid) or ["X"])[0] not in "TtZX" for pid in servers
    ):
        time.sleep(0.005)
    # A stopped parent reaps no child, so these pids cannot be reused before the kill.
    for child in _children(set(servers)):
        _signal(child, None, signal.SIGKILL)


def main() -> int:
    """Read names until ``done`` (exit quietly) or end of input (kill them all)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    servers: dict[int, int | None] = {}
    workers: dict[int, int | None] = {}
    for line in sys.stdin.buffer:
        kind, _, number = line.strip().partition(b" ")
        if kind == b"done":
            return 0
        if number.isdigit() and kind in (b"server", b"worker"):
            known, pid = (servers if kind == b"server" else workers), int(number)
            if pid not in known:
                known[pid] = _open(pid)
    _stop_and_kill_children(servers)
    for pid, fd in (*servers.items(), *workers.items()):
        _signal(pid, fd, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
