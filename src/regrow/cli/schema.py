"""`regrow schema diff | check`: schema changes and their class under a compatibility mode.

The mode comes from the policy's ``contracts`` section (``--policy``, default: the shipped
policy) unless ``--mode`` overrides it; see :mod:`regrow.data.compat` for what each mode means.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from regrow.cli._app import AsJson, Home, app, err, out, print_json, workspace
from regrow.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from regrow.catalog.records import SchemaRecord, SystemVersionRecord
    from regrow.data.compat import Compatibility
    from regrow.data.schema import Schema
    from regrow.plan.policy import Policy
    from regrow.workspace import Workspace

__all__ = ["schema_app"]

schema_app = typer.Typer(help="Compare schemas under a compatibility mode.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")

_SCHEMA_VERSION = re.compile(r"^(?P<name>.+):v(?P<version>\d+)$")
_CLASS_STYLE = {"safe": "green", "adaptable": "yellow", "breaking": "red"}

ModeOption = Annotated[
    str | None,
    typer.Option("--mode", help="backward, forward, full or none (default: the policy's)."),
]
PolicyOption = Annotated[
    Path | None,
    typer.Option(
        help="Policy YAML (default: the workspace's, pinned by `regrow policy set`, else the "
        "shipped default)."
    ),
]
TransitiveOption = Annotated[
    bool | None,
    typer.Option(
        "--transitive/--no-transitive",
        help="Check every schema of the name up to the trained one (default: the policy's).",
    ),
]


@schema_app.command("diff")
def schema_diff(
    old: Annotated[str, typer.Argument(help="Snapshot (id, prefix, name) or NAME:vN schema.")],
    new: Annotated[str, typer.Argument(help="Snapshot (id, prefix, name) or NAME:vN schema.")],
    mode: ModeOption = None,
    policy: PolicyOption = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Every change from schema OLD to schema NEW and its class (safe, adaptable, breaking).

    A NAME:vN argument names version N of dataset NAME's schema; anything else a snapshot.
    Prints the verdict under the mode; exits 0 either way (`regrow schema check` gates).
    """
    from regrow.data import Schema
    from regrow.data.compat import classify

    given = _given(mode, policy)
    with workspace(home) as ws:
        chosen = _mode(ws, mode, given)
        before, after = _schema_record(ws, old), _schema_record(ws, new)
    result = classify(Schema.from_dict(before.spec), Schema.from_dict(after.spec), chosen)
    if as_json:
        print_json({"old": _label(before), "new": _label(after), **result.to_dict()})
        return
    out.print(f"{_label(before)} → {_label(after)}")
    _print(result)


@schema_app.command("check")
def schema_check(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, id prefix or name (newest).")],
    system: Annotated[str, typer.Option(help="The system whose training schema to check.")],
    version: Annotated[
        str | None,
        typer.Option(help="The system version, e.g. v3 or churn:v3 (default: its champion)."),
    ] = None,
    mode: ModeOption = None,
    transitive: TransitiveOption = None,
    policy: PolicyOption = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Check SNAPSHOT against the schema the system's champion (or --version) trained on.

    Only the columns the system reads can break it, and changes its own adapters bridge are
    safe. The mode is --mode, else the policy's for the system (contracts.systems), with
    components that have a mode of their own checked under it for the columns they read.
    Exits 0 when compatible; 1 with each breaking change and a hint naming the column, the
    mode and the fix.
    """
    from regrow.data import Schema
    from regrow.data.compat import bridge, classify_history

    given = _given(mode, policy)
    with workspace(home) as ws:
        section = _contracts(ws, given)
        every = section.transitive_for(system) if transitive is None else transitive
        trained = _trained_on(ws, system, version)
        reference = ws.catalog.snapshot_schema(str(trained.snapshot_id))
        history = [reference]
        if every:
            versions = ws.catalog.schema_versions(reference.name)
            history = [r for r in versions if r.version <= reference.version]
        candidate = ws.catalog.snapshot_schema(snapshot)
        new = _read_as_trained(ws, snapshot, candidate.spec, reference.spec)
    adapters = trained.spec.get("adapters") or []
    checks = []  # (mode, components, schema record, result)
    for chosen, components, columns in _groups(trained, section, mode):
        results = classify_history(
            [Schema.from_dict(r.spec) for r in history],
            new,
            chosen,
            transitive=every,
            target=columns,
        )
        for record, result in zip(history, results, strict=True):
            checks.append((chosen, components, record, bridge(result, adapters)))
    compatible = all(r.compatible for *_, r in checks)
    several = len({c[0] for c in checks}) > 1
    if as_json:
        print_json(
            {
                "snapshot": snapshot,
                "version": trained.ref,
                "compatible": compatible,
                "checks": [
                    {"against": _label(record), "components": components, **result.to_dict()}
                    for _, components, record, result in checks
                ],
            }
        )
    else:
        for chosen, components, record, result in checks:
            who = f"; components {', '.join(components)}" if several else ""
            out.print(f"{snapshot} against {_label(record)} ({trained.ref} trained on it{who})")
            _print(result)
            for change in result.breaking:
                err.print(Text.assemble(("hint: ", "yellow"), change.hint(chosen)))
    if not compatible:
        raise typer.Exit(1)


def _groups(
    version: SystemVersionRecord, section: Any, mode: str | None
) -> list[tuple[str, list[str], list[str]]]:
    """(mode, components, the data columns they read) per mode the check runs under."""
    components: dict[str, Any] = version.spec.get("components") or {}
    readers = [n for n, c in components.items() if c.get("kind") != "ensemble"]
    modes = dict.fromkeys(readers, mode) if mode else section.modes(version.system, readers)
    groups: dict[str, list[str]] = {}
    for name in readers:
        groups.setdefault(modes[name], []).append(name)
    found = []
    for chosen, names in groups.items():
        columns = {str(i) for n in names for i in components[n].get("inputs") or []}
        found.append((chosen, names, sorted(columns - set(components))))
    return found


def _given(mode: str | None, policy: Path | None) -> Policy | None:
    """The policy of the ``--policy`` file (None without one), read once; an unknown
    ``--mode`` or a bad file is refused before anything opens."""
    from regrow.data.compat import MODES
    from regrow.plan.policy import load_policy

    if mode is not None and mode not in MODES:
        raise ConfigError(f"unknown --mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    return load_policy(policy) if policy is not None else None


def _contracts(ws: Workspace, given: Policy | None) -> Any:
    """The ``contracts`` section of the ``--policy`` file's policy, else of the workspace's
    (pinned by `regrow policy set`, else the shipped one)."""
    return (given if given is not None else ws.policy()).contracts


def _mode(ws: Workspace, mode: str | None, given: Policy | None) -> str:
    """``--mode``, else the policy's compatibility mode (see :func:`_contracts`)."""
    return mode if mode is not None else str(_contracts(ws, given).compatibility)


def _schema_record(ws: Workspace, ref: str) -> SchemaRecord:
    """Version N of a name's schema for ``NAME:vN``, else the schema of snapshot ``ref``."""
    match = _SCHEMA_VERSION.match(ref)
    if match is not None:
        versions = ws.catalog.schema_versions(match["name"])
        if versions:
            number = int(match["version"])
            for record in versions:
                if record.version == number:
                    return record
            raise ConfigError(
                f"dataset {match['name']!r} has no schema v{number}",
                hint=f"its schema versions are v1 to v{versions[-1].version}",
            )
    return ws.catalog.snapshot_schema(ref)


def _read_as_trained(
    ws: Workspace, snapshot: str, spec: dict[str, Any], trained: dict[str, Any]
) -> Schema:
    """The schema (``spec``) of ``snapshot`` compared with the one a version trained on
    (``trained``): a string column that schema calls category (a few rows hold too few
    repeats for inference to call it one) read again from the rows as that category."""
    from regrow.data import Schema
    from regrow.data.snapshot_safety import loose_categories, typed_like

    new, old = Schema.from_dict(spec), Schema.from_dict(trained)
    loose = loose_categories(new, old)
    return typed_like(new, old, ws.frame(snapshot, columns=loose)) if loose else new


def _trained_on(ws: Workspace, system: str, version: str | None) -> SystemVersionRecord:
    if version is None:
        ref = f"{system}@champion"
    elif ":" in version or "@" in version:
        ref = version
    else:
        ref = f"{system}:{version}"
    try:
        record = ws.catalog.get_system_version(ref)
    except NotFound as exc:
        if version is not None:
            raise
        raise ConfigError(
            f"{system!r} has no champion to check against ({exc.message})",
            hint=f"name the version with --version (e.g. --version v1); {exc.hint or ''}".rstrip(
                "; "
            ),
        ) from None
    if record.system != system:
        raise ConfigError(
            f"--version {version!r} is a version of {record.system!r}, not of {system!r}",
            hint=f"give a version of {system!r}, e.g. --version v1",
        )
    if record.snapshot_id is None:
        raise ConfigError(
            f"{record.ref} records no training snapshot, so no schema to check against",
            hint="check against a version trained from a snapshot (--version)",
        )
    return record


def _read_columns(version: SystemVersionRecord) -> list[str]:
    """The data columns the version's components read (component outputs left out)."""
    components: dict[str, Any] = version.spec.get("components") or {}
    return sorted(
        {
            str(i)
            for c in components.values()
            for i in (c.get("inputs") or [])
            if i not in components
        }
    )


def _label(record: SchemaRecord) -> str:
    return f"{record.name}:v{record.version}"


def _print(result: Compatibility) -> None:
    style = "green" if result.compatible else "red"
    verdict = "compatible" if result.compatible else "incompatible"
    out.print(Text.assemble(f"  {result.mode}: ", (verdict, style)))
    if not result.changes:
        out.print("  no change")
    for change in result.changes:
        via = f" ({change.adapter})" if change.adapter and change.cls == "adaptable" else ""
        if change.bridged:
            via = f" (bridged by its {change.bridged} adapter)"
        out.print(
            Text.assemble("  ", (f"{change.cls:<10}", _CLASS_STYLE[change.cls]), change.detail, via)
        )
