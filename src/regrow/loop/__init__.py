"""The loop: keep systems fresh on their own (``regrow watch``).

:mod:`regrow.loop.watch` runs watch cycles (window, monitor, forecast, decide, plan, run,
evaluate, roll out) over a :class:`~regrow.Workspace`; it sits above the Workspace, as the CLI
and the server do. See docs/loop.md.
"""

from regrow.loop.watch import (
    FilesSource,
    ServedSource,
    SnapshotSource,
    Watcher,
    Window,
    WindowSource,
    parse_every,
    source_from,
)

__all__ = [
    "FilesSource",
    "ServedSource",
    "SnapshotSource",
    "Watcher",
    "Window",
    "WindowSource",
    "parse_every",
    "source_from",
]
