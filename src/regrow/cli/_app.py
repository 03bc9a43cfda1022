"""The Typer app, its consoles and common options, and how the command reports errors.

Nothing heavy is imported here: the workspace, pandas, scikit-learn and SQLAlchemy load inside
the commands that need them, so ``regrow --help`` starts in a fraction of a second.
"""

from __future__ import annotations

import copy
import gc
import inspect
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core
import typer.main
import typer.models
from rich.console import Console
from rich.text import Text

from regrow.errors import ConfigError, NotFound, RegrowError

if TYPE_CHECKING:
    from regrow.catalog.records import SnapshotRecord
    from regrow.run.backends import ExecutorBackend
    from regrow.workspace import Workspace

__all__ = [
    "INTERRUPTED",
    "Address",
    "AsJson",
    "Backend",
    "Home",
    "Since",
    "Stopped",
    "Until",
    "Window",
    "app",
    "err",
    "executor",
    "known_system",
    "main",
    "note_bare_ref",
    "out",
    "print_json",
    "report_file",
    "window_of",
    "workspace",
]


def _blank_for_flags(
    display_type: Callable[[typer.core.TyperOption, Any], str | None],
) -> Callable[[typer.core.TyperOption, Any], str | None]:
    """The help's type column of an option as ``display_type`` gives it, but none for a flag
    (``--json``), which takes no value: typer 0.29 shows ``<bool>`` there, as if it took one."""

    def flag_type(option: typer.core.TyperOption, ctx: Any) -> str | None:
        if option.is_flag and not option.count:
            return None
        return display_type(option, ctx)

    return flag_type


# typer has no setting for this column; its help formatting is the one place that reads it.
# Older typers (before 0.29) have no such column, and nothing to patch.
_display_type = getattr(typer.core.TyperOption, "display_type_rich", None)
if _display_type is not None:
    typer.core.TyperOption.display_type_rich = _blank_for_flags(_display_type)  # type: ignore[method-assign,assignment]


class _Commands(Mapping[str, Any]):
    """The root's commands and groups by name, each built from its Typer registration the
    first time it is asked for.

    Typer builds every command's options up front: for 133 commands, ~0.08 s of evaluating
    annotations, paid by each call of `regrow` though one command runs. Here a call builds
    only the command it runs; ``regrow --help`` lists stand-ins that hold a command's name
    and help text and no options (while :attr:`listing` is set).
    """

    def __init__(self, typer_app: typer.Typer) -> None:
        self._app = typer_app
        self._entries: dict[str, Any] = {
            _name_of(info): info
            for info in [*typer_app.registered_commands, *typer_app.registered_groups]
        }  # Typer's order: commands, then groups
        self._built: dict[str, Any] = {}
        self.listing = False

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> Any:
        if name in self._built:
            return self._built[name]
        info = self._entries[name]
        if self.listing:
            return _stand_in(name, info)
        one = copy.copy(self._app)  # a root that holds this registration alone
        one.registered_commands = [i for i in self._app.registered_commands if i is info]
        one.registered_groups = [i for i in self._app.registered_groups if i is info]
        command = typer.main.get_group(one).commands[name]
        _unwrap_help(command)
        self._built[name] = command
        return command


class _LazyGroup(typer.core.TyperGroup):
    """The root group: its commands are built on demand (see :class:`_Commands`); its help
    lists them from their stand-ins. With a plain dict of commands (Typer's own
    ``get_command(app)``, as the tests use it) it is a TyperGroup like any other."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        commands = self.commands
        if not isinstance(commands, _Commands):
            super().format_help(ctx, formatter)
            return
        commands.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            commands.listing = False


def _name_of(info: Any) -> str:
    """The name Typer gives a registered command (``CommandInfo``) or group (``TyperInfo``)."""
    if isinstance(info, typer.models.CommandInfo):
        return info.name or typer.main.get_command_name(getattr(info.callback, "__name__", ""))
    return str(typer.main.solve_typer_info_defaults(info).name)


def _stand_in(name: str, info: Any) -> Any:
    """What the root's help shows of a command or group: its name, help and panel."""
    solved: typer.models.CommandInfo | typer.models.TyperInfo
    if isinstance(info, typer.models.CommandInfo):
        text = inspect.cleandoc(info.help) if info.help else inspect.getdoc(info.callback)
        solved = info
    else:
        solved = typer.main.solve_typer_info_defaults(info)
        text = solved.help
    command = typer.core.TyperCommand(
        name=name,
        help=text,
        short_help=solved.short_help,
        hidden=bool(solved.hidden),
        deprecated=bool(solved.deprecated),
        rich_help_panel=solved.rich_help_panel,
    )
    _unwrap_help(command)
    return command


app = typer.Typer(
    cls=_LazyGroup,
    name="regrow",
    help="Keep production models fresh by retraining only what needs it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("regrow")
        except PackageNotFoundError:  # run from a source tree
            from regrow import __version__ as found
        print(f"regrow {found}")
        raise typer.Exit


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print regrow's version and exit."
        ),
    ] = False,
) -> None:
    """Keep production models fresh by retraining only what needs it."""


def _width(stream: Any) -> int | None:
    """The console width: the terminal's, or ``COLUMNS``; else (a pipe, a file, a CI log)
    160, so tables are not cut to 80 columns where nobody resizes a window."""
    if os.environ.get("COLUMNS") or (hasattr(stream, "isatty") and stream.isatty()):
        return None
    return 160


# Markup off: names, reasons and paths are user text, printed as they are, never parsed.
out = Console(markup=False, highlight=False, soft_wrap=True, width=_width(sys.stdout))
err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True, width=_width(sys.stderr))

#: What Ctrl-C prints: fitted components are in the catalog, so a rerun picks up from there.
INTERRUPTED = "interrupted; finished components are kept: run again to resume"

Home = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Workspace folder (default: $REGROW_HOME, else the nearest .regrow at or above "
        "the current folder).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Port = Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free one).")]
Window = Annotated[str, typer.Option(help="A snapshot (id, prefix, name) or a CSV/Parquet file.")]
Since = Annotated[
    str,
    typer.Option(help="Start: an ISO date or time (UTC if naive), or a span ago: 24h, 7d."),
]
Until = Annotated[
    str | None, typer.Option(help="End (excluded), in the same forms (default: now).")
]
Backend = Annotated[
    str | None,
    typer.Option("--backend", help="Executor backend: local or ray (default: config, else local)."),
]
Address = Annotated[
    str | None, typer.Option("--address", help="Ray cluster address (with --backend ray).")
]


def known_system(ws: Workspace, system: str | None) -> None:
    """Refuse a system name the workspace does not hold (a typo listed nothing, exit 0)."""
    if system is None:
        return
    systems = ws.catalog.list_systems()
    if system in systems:
        return
    name = system.partition("@")[0].partition(":")[0]
    if name != system and name in systems:  # shop@champion, shop:v2: a version, not a system
        raise NotFound(
            "system",
            system,
            hint=f"this command takes a system's name: {name!r} ({system!r} names a version)",
        )
    raise ws.catalog.unknown_system(system)  # its hint: a close name, else those there are


def report_file(path: Path | None) -> Path | None:
    """A ``--report FILE`` option's value, checked before the command does anything: a file
    in an existing folder, not a folder (writing to one failed with a traceback after the
    work was done)."""
    if path is None:
        return None
    if path.is_dir():
        raise typer.BadParameter(
            f"{str(path)!r} is a folder; give a file name, e.g. {str(path / 'report.html')!r}"
        )
    if not path.parent.is_dir():
        raise typer.BadParameter(
            f"cannot write the report to {str(path)!r}: folder {str(path.parent)!r} does not "
            "exist; give a path in an existing folder"
        )
    return path


def print_json(value: Any) -> None:
    """One line of JSON on standard output (records, dates and numpy values made plain)."""
    from regrow._hashing import jsonable

    typer.echo(json.dumps(jsonable(value), indent=None, sort_keys=False))


@contextmanager
def workspace(home: Path | None) -> Iterator[Workspace]:
    """The workspace at ``home`` (default: :func:`regrow.config.find_home`), closed after.

    Every command acts as an identity: opening checks that it may read the workspace (the
    viewer role); each operation that writes checks its own role too.
    """
    from regrow._signals import signals_held
    from regrow.workspace import Workspace

    ws = Workspace.open(home)
    try:
        ws.require("viewer", "read the workspace")
        yield ws
    finally:
        with signals_held():  # Ctrl-C while connections close printed SQLAlchemy's traceback
            ws.close()


def note_bare_ref(ws: Workspace, ref: str) -> None:
    """Say on stderr when a bare system name (its newest version) is not its champion: a
    user who writes ``eta`` often means the version in production."""
    from regrow.catalog.refs import parse_version_ref

    try:
        parsed = parse_version_ref(ref)
    except RegrowError:
        return  # the command itself says what is wrong with it
    if parsed.kind != "bare":
        return
    system = parsed.text  # a bare reference is the system's name
    champion = next((a for a in ws.catalog.list_aliases(system) if a.name == "champion"), None)
    versions = ws.catalog.list_system_versions(system)
    if champion is None or not versions or versions[0].id == champion.version_id:
        return
    held = next((v.ref for v in versions if v.id == champion.version_id), champion.version_id[:12])
    err.print(
        f"note: {ref!r} is the newest version, {versions[0].ref}; the champion is {held} "
        f"(write {system}@champion for it)"
    )


def window_of(ws: Workspace, window: str) -> SnapshotRecord | Path:
    """A window given as a snapshot reference, or a CSV/Parquet file.

    A file is read by the command and stored as snapshot ``<system>-window`` only once the
    command on it succeeded (see :func:`regrow.monitoring.open_window`).
    """
    path = Path(window)
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        try:
            return ws.catalog.get_snapshot(window)
        except NotFound:
            if not path.is_file():
                raise
            raise ConfigError(
                f"the window {window!r} is a file, but not a CSV or Parquet one (by its "
                "name), and no snapshot has that name",
                hint="give a .csv or .parquet file (rename it, if it is one), or a snapshot",
            ) from None
    if not path.is_file():
        raise ConfigError(f"no such file {window!r}", hint="check the window's path")
    return path


@contextmanager
def executor(
    ws: Workspace, name: str | None, address: str | None, workers: int | None
) -> Iterator[ExecutorBackend | None]:
    """The backend the options (else the workspace's ``[run]`` settings) name; None: the
    runner's own local backend. Closed (Ray shut down if it was started here) at the end."""
    cfg = ws.config
    name = name or cfg.backend
    address = address or cfg.address
    workers = workers if workers is not None else cfg.workers
    if name == "local" and address is None:
        yield None
        return
    from regrow.run.backends import make_backend

    backend = make_backend(name, address=address, workers=workers)
    try:
        yield backend
    finally:
        backend.close()


class Stopped(SystemExit):
    """A command that stopped cleanly on Ctrl-C (``regrow serve``): exit 130 without the
    "finished components are kept" line, which is about runs."""


#: Commands that fit components: what they finished is kept, and running again resumes.
_FITTING = frozenset({"train", "update", "run", "demo", "refresh", "watch"})


def _interrupted(argv: list[str] | None = None) -> None:
    """One line on Ctrl-C: what is kept, for the commands that fit components."""
    words = [w for w in (sys.argv[1:] if argv is None else argv) if not w.startswith("-")]
    if words and words[0] not in _FITTING:
        err.print(Text("interrupted", "bold yellow"))
        return
    err.print(Text.assemble(("interrupted", "bold yellow"), INTERRUPTED[len("interrupted") :]))


def _unwrap_help(command: Any) -> None:
    """Make ``command``'s help (and its subcommands' and options') read as written.

    Typer renders help as Rich markup and keeps a docstring's line breaks after the first
    paragraph: ``[costs]`` vanished as a style tag, and lines came out ragged in an 80-column
    terminal. So brackets are escaped (help is plain text here, like every other output), and
    each paragraph's lines are joined for Rich to wrap, except lists (lines starting ``-``,
    ``*`` or ``1.``) and paragraphs marked ``\\b``.
    """
    from rich.markup import escape

    if command.help:
        command.help = "\n\n".join(
            part if part.startswith("\b") or _LIST.search(part) else " ".join(part.split())
            for part in inspect.cleandoc(_plain(command.help, escape)).split("\n\n")
        )
    for param in getattr(command, "params", ()):
        if getattr(param, "help", None):
            param.help = _plain(param.help, escape)
    for sub in getattr(command, "commands", {}).values():
        _unwrap_help(sub)


def _plain(text: str, escape: Any) -> str:
    """``text`` with every ``[`` escaped for Rich (those escaped by hand once)."""
    return str(escape(text.replace("\\[", "[")))


_LIST = re.compile(r"^\s*(?:[-*]|\d+\.)\s", re.MULTILINE)


def _root() -> Any:
    """The `regrow` command: the root group with its options (``--version``), and its
    commands built as they are asked for."""
    bare = copy.copy(app)
    bare.registered_commands, bare.registered_groups = [], []
    root = typer.main.get_command(bare)
    _unwrap_help(root)
    root.commands = _Commands(app)  # type: ignore[attr-defined]
    return root


#: The garbage collector's thresholds while a command runs. Python's (700, 10, 10) collect
#: ~500 times in a plan or an evaluation on the demo's workspace, as importing pandas,
#: scikit-learn and SQLAlchemy and reading the data allocate a few hundred thousand objects:
#: 9-16% of the command's CPU (0.36-0.40 of 2.1-2.5 CPU s for `regrow evaluate`). With these
#: a command collects a handful of times; mypy's command sets the same for the same reason.
#: Servers keep Python's (:data:`PYTHON_GC`; short pauses count more there).
COMMAND_GC = (200_000, 30, 30)

#: The thresholds the interpreter started with.
PYTHON_GC = gc.get_threshold()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `regrow` console script.

    A :class:`~regrow.errors.RegrowError` prints ``error:`` and ``hint:`` lines and exits 2;
    Ctrl-C prints one line (for commands that fit components: that finished work is kept), and
    exits 130. Neither shows a traceback. The command runs with :data:`COMMAND_GC`; the
    caller's thresholds are back when it returns (tests call this in their own process).
    """
    before = gc.get_threshold()
    gc.set_threshold(*COMMAND_GC)
    try:
        command = _root()
        command(args=argv, standalone_mode=True)
    except RegrowError as exc:
        err.print(Text.assemble(("error: ", "bold red"), exc.message), highlight=False)
        if exc.hint:
            err.print(Text.assemble(("hint: ", "yellow"), exc.hint), highlight=False)
        raise SystemExit(2) from None
    except SystemExit as exc:
        # Typer turns Ctrl-C inside a command into a silent exit 130.
        if exc.code == 130 and not isinstance(exc, Stopped):
            _interrupted(argv)
        raise
    except KeyboardInterrupt:  # before or after the command (while importing, say)
        _interrupted(argv)
        raise SystemExit(130) from None
    except Exception as exc:
        damage = _damaged_database(exc)
        if damage is None:
            raise
        err.print(
            Text.assemble(("error: ", "bold red"), f"the catalog database is damaged: {damage}"),
            highlight=False,
        )
        err.print(Text.assemble(("hint: ", "yellow"), DAMAGED_HINT), highlight=False)
        raise SystemExit(2) from None
    finally:
        gc.set_threshold(*before)


DAMAGED_HINT = (
    "keep a copy of catalog.db for investigation and restore it from a backup; "
    "`regrow doctor` checks the database and lists what else is wrong"
)
_DAMAGE = ("database disk image is malformed", "file is not a database", "disk i/o error")


def _damaged_database(exc: BaseException) -> str | None:
    """SQLite's words when ``exc`` is its error on a damaged database file (a page overwritten,
    the file truncated under a running command), else None. SQLAlchemy is looked up, not
    imported: a command that never opened the catalog cannot have hit it."""
    errors = sys.modules.get("sqlalchemy.exc")
    if errors is None or not isinstance(exc, errors.DatabaseError):
        return None
    words = str(getattr(exc, "orig", exc))
    return words if any(d in words.lower() for d in _DAMAGE) else None
