"""`regrow recipes list | show`: the recipes plans are made of, built in or from entry points."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from regrow.cli._app import AsJson, Home, app, err, out, print_json

__all__ = ["recipes_app"]

recipes_app = typer.Typer(
    help="The recipes plans are made of: built-ins and those of installed packages.",
    no_args_is_help=True,
)
app.add_typer(recipes_app, name="recipes")


def _report_broken(errors: list[object], *, strong: bool) -> None:
    """Each entry point that could not load, with its hint, on standard error."""
    for exc in errors:
        message, hint = getattr(exc, "message", str(exc)), getattr(exc, "hint", None)
        label = ("error: ", "bold red") if strong else ("warning: ", "yellow")
        err.print(Text.assemble(label, message))
        if hint:
            err.print(Text.assemble(("hint: ", "yellow"), hint))


@recipes_app.command("list")
def recipes_list(home: Home = None, as_json: AsJson = False) -> None:
    """Every recipe: name, version, action, what it applies to, where it comes from.

    An entry point of group ``regrow.recipes`` that cannot load is named on standard error
    (the others are listed) and the command exits 1.
    """
    from regrow.recipes import recipes
    from regrow.recipes.base import describe_families

    del home  # recipes come with the installed packages, not with a workspace
    registry = recipes()
    if as_json:
        print_json(
            {
                "recipes": [
                    {k: v for k, v in r.to_dict().items() if k not in ("params", "doc")}
                    | {"summary": r.summary}
                    for r in registry
                ],
                "errors": [{"message": e.message, "hint": e.hint} for e in registry.errors],
            }
        )
    else:
        table = Table(title="recipes")
        table.add_column("name", no_wrap=True, min_width=25)  # names are what users copy
        for col in ("version", "action", "applies to", "source"):
            table.add_column(col)
        for r in registry:
            families = describe_families(r.applies_to)
            table.add_row(r.name, str(r.version), r.action_kind, families, r.source)
        out.print(table)
        out.print("`regrow recipes show NAME` shows one's parameters, budget and documentation")
        _report_broken(list(registry.errors), strong=True)
    if registry.errors:
        raise typer.Exit(1)


@recipes_app.command("show")
def recipes_show(
    ref: Annotated[
        str, typer.Argument(metavar="NAME[@VERSION]", help="A recipe; no version: its highest.")
    ],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """A recipe's parameters (types, defaults, valid values), budget and documentation."""
    from regrow.recipes import recipes
    from regrow.recipes.base import MADE_BY, describe_families, version_key

    del home
    registry = recipes()
    recipe = registry.get(ref)
    versions = [str(v) for v in sorted(registry.by_name[recipe.name], key=version_key)]
    if as_json:
        print_json({**recipe.to_dict(), "versions": versions})
    else:
        out.print(Text.assemble((recipe.ref, "bold"), f": {recipe.summary}"))
        out.print(
            f"action: {recipe.action_kind}; applies to: {describe_families(recipe.applies_to)}; "
            f"made by: {MADE_BY[recipe.made_by]}"
            f"; source: {recipe.source}; versions: {', '.join(versions)}"
        )
        out.print(
            f"budget: {recipe.max_cpu_seconds:g} CPU seconds (an action estimated above it "
            "needs approval)"
            if recipe.max_cpu_seconds is not None
            else "budget: none of its own (the policy's budgets.max_cpu_seconds)"
        )
        if recipe.params:
            table = Table(title="parameters")
            for col in ("name", "type", "default", "valid values", "what it does"):
                table.add_column(col)
            for p in recipe.params:
                table.add_row(
                    p.name, p.type, json.dumps(p.default), p.to_dict()["constraint"], p.doc
                )
            out.print(table)
        else:
            out.print("parameters: none")
        out.print("")
        out.print(recipe.doc.strip())
    _report_broken(list(registry.errors), strong=False)
