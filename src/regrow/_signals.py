"""Hold Ctrl-C and SIGTERM while a short write finishes, then act on them.

A signal that lands in the middle of recording that a plan ran, or of closing the catalog's
connections, left the plan ``running`` for ever, or printed SQLAlchemy's traceback of a
connection it could not close. These take milliseconds: the signal waits for them.

>>> with signals_held():
...     pass
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["signals_held"]


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM while the block runs: one that came is handled by
    the handler it found once the block is done (if the block fails, its error stops the
    command instead). Only in the main thread, where handlers run, and for a signal with a
    handler of Python's (one ignored or left to the system is left so).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    found = {n: h for n in (signal.SIGINT, signal.SIGTERM) if callable(h := signal.getsignal(n))}
    came: list[signal.Signals] = []
    for held in found:
        signal.signal(held, lambda signum, frame: came.append(signal.Signals(signum)))
    try:
        yield
    finally:
        for held, handler in found.items():
            signal.signal(held, handler)
    if came:  # the first is enough: it stops the command
        found[came[0]](came[0], None)
