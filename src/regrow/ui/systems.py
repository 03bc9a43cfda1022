"""The error every dashboard page answers for a system the catalog does not know.

A page filtered by system (monitoring, plans, rollouts) answers 404 for an unknown one, with
the catalog's hint (a close name, the known systems, or that its first training did not
finish); on a workspace with no system at all, the hint says to train one first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from regrow.errors import NotFound

if TYPE_CHECKING:
    from regrow.workspace import Workspace

__all__ = ["require_system", "unknown_system"]

#: The hint of an unknown system on a workspace that holds none.
NO_SYSTEM_YET = (
    "there are no systems yet: train one first (`regrow train FILE.py:SYSTEM --snapshot S`, "
    "or `regrow demo` for an example)"
)


def unknown_system(ws: Workspace, system: str) -> NotFound:
    """The error for ``system``, which has no version: its hint names what exists instead."""
    if not ws.catalog.list_systems():
        return NotFound("system", system, hint=NO_SYSTEM_YET)
    return ws.catalog.unknown_system(system)


def require_system(ws: Workspace, system: str | None) -> None:
    """Raise :func:`unknown_system`'s error unless ``system`` is None (every system) or has a
    version or a component in the catalog."""
    if system is not None and system not in ws.catalog.list_systems():
        raise unknown_system(ws, system)
