"""Tables shared by several commands: a run's components, and why each was trained or reused."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from regrow.cli._app import out, print_json

if TYPE_CHECKING:
    from regrow.run.runner import ComponentOutcome, RunResult

__all__ = ["run_table", "show_run", "why", "why_text"]


def why(outcome: ComponentOutcome) -> str:
    """Why a component was trained, or why its existing version could be reused."""
    return why_text(outcome.action, outcome.causes)


def why_text(action: str, causes: Sequence[str]) -> str:
    """``causes`` of a trained component, or of a reused one, for people.

    A reused component never shows a stale cause (such as "not in the catalog", which older
    runs recorded): it was found in the catalog under its fingerprint. If that version is not
    its parent's (an earlier, perhaps interrupted, or a concurrent run fitted it), that is
    said, with the parts it differs from the parent's in.
    """
    if action == "trained":
        return ", ".join(causes) or "fingerprint not found"
    if not causes or list(causes) == ["fingerprint unchanged"]:
        return "fingerprint unchanged"
    changed = [c for c in causes if c not in ("not in the catalog", "new component")]
    return "fitted by an earlier run" + (f" (changed: {', '.join(changed)})" if changed else "")


def run_table(result: RunResult, *, title: str, seconds: bool = True) -> Table:
    """One row per component: kind, trained or reused, why, and seconds."""
    table = Table(title=title)
    for col in ("component", "kind", "action", "why", *(("seconds",) if seconds else ())):
        table.add_column(col)
    for o in result.components.values():
        style = "green" if o.action == "trained" else "dim"
        secs = ((f"{o.seconds:.2f}" if o.action == "trained" else "-"),) if seconds else ()
        table.add_row(o.name, o.kind, Text(o.action, style=style), why(o), *secs)
    return table


def show_run(result: RunResult, as_json: bool) -> None:
    """A run's outcome: JSON, or the table and whether a version was made."""
    if as_json:
        print_json(
            {
                "version": result.version.ref,
                "run": result.run.id,
                "created_version": result.created_version,
                "trained": result.trained,
                "reused": result.reused,
                "causes": {n: list(o.causes) for n, o in result.components.items() if o.causes},
                "seconds": round(result.seconds, 3),
            }
        )
        return
    out.print(run_table(result, title=f"{result.version.ref} (run {result.run.id[:12]})"))
    if not result.created_version:
        out.print("nothing changed: no new version")
