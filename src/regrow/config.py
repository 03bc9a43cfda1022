"""Workspace configuration: where the catalog and the artifact store live.

A workspace is a folder (``.regrow/`` by default) holding ``config.toml``::

    [catalog]
    url = "sqlite:///catalog.db"      # relative SQLite paths are inside the workspace

    [store]
    url = "artifacts"                 # a folder inside the workspace, or any fsspec URL

    [run]                             # optional: where runs execute (default: local)
    backend = "ray"                   # "local" or "ray"
    address = "10.0.0.5:6379"         # ray only: the cluster's head; omit to start one
    workers = 4                       # local: worker processes; ray without address: CPUs

    [auth]                            # optional: who may act (see regrow.auth)
    os_user = true                    # false: only API tokens (REGROW_TOKEN) identify

    [serve]                           # optional: what `regrow serve` serves (ServeSettings)
    models = ["churn@champion"]       # default: every system with a "champion" alias
    inference = "open"                # "token": inference needs a token (viewer or above)

    [costs]                           # optional: prices of what runs use (regrow.costs)
    currency = "EUR"
    cpu_hour = 0.04                   # per CPU hour, on every backend...
    [costs.ray]
    gpu_hour = 2.5                    # ...unless the backend's own table says otherwise

    [watch]                           # optional: what `regrow watch` reads (WatchSettings)
    source = "files:windows/*.parquet"  # or "served" (the prediction log), "snapshot:NAME"
    every = "15m"                     # how often it looks for a new window
    notify = "https://hooks.example.com/regrow"  # or a command; gets each event as JSON
    [watch.fraud]                     # a system's own settings
    source = "snapshot:fraud-daily"

Environment variables override, in this order: an explicit argument, then ``REGROW_HOME``,
``REGROW_CATALOG_URL``, ``REGROW_STORE_URL``, ``REGROW_BACKEND`` and ``REGROW_RAY_ADDRESS``,
then the file. ``REGROW_ALLOW_OS_USER`` may only tighten ``[auth] os_user``: ``0`` turns the
mapping off, ``1`` leaves the file's setting as it is (it cannot turn on what the file turned
off).

Every mistake of the file is named at once, in one :class:`~regrow.errors.ConfigError`.
``[watch]`` is read (and checked) only by what uses it (:attr:`Config.watch`,
:meth:`Config.watch_for`): a mistake there stops ``regrow watch`` alone.

With ``os_user = true`` (the default) a command without a token acts as the identity named
like the OS login of its process (the account of its user id; environment variables such as
``$USER`` or ``$REGROW_ACTOR`` do not change it): the OS login is trusted. People who share
an OS account share its identity, so for enforced four-eyes across people sharing an OS
account, give each a token and set ``os_user = false``: then only a token identifies. Either
way, whoever can write the catalog's database can act as anyone (the audit chain shows it).

>>> cfg = Config(home=Path("/tmp/ws"), catalog_url="sqlite:///catalog.db", store_url="artifacts")
>>> cfg.resolved_catalog_url()
'sqlite:////tmp/ws/catalog.db'
>>> cfg.resolved_store_url()
'/tmp/ws/artifacts'
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tomllib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from regrow.costs import BACKENDS, CostProfile  # (the runner's: a test checks)
from regrow.errors import ConfigError, WorkspaceNotFound

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_HOME",
    "Config",
    "ServeSettings",
    "WatchSettings",
    "find_home",
    "resolve_home",
    "restore_folder",
]

DEFAULT_HOME = ".regrow"

_SECTIONS = frozenset({"catalog", "store", "run", "auth", "serve", "costs", "watch"})
"""The tables a workspace's ``config.toml`` may hold."""
CONFIG_FILE = "config.toml"
DEFAULT_CATALOG_URL = "sqlite:///catalog.db"
DEFAULT_STORE_URL = "artifacts"
DEFAULT_BACKEND = "local"
_RUN_KEYS = ("address", "backend", "workers")
_FLAGS = {"0": False, "1": True, "false": False, "true": True}
_INFERENCE = ("open", "token")
_FIX = "fix it in config.toml, or leave the key out for its default"
_FIX_EACH = "fix each in config.toml, or leave the key out for its default"


@dataclass(frozen=True)
class _Mistake:
    """One wrong setting: ``message`` names its key and value, ``hint`` says what to do
    (None: :data:`_FIX`)."""

    message: str
    hint: str | None = None


def _report(mistakes: Sequence[_Mistake], where: str) -> None:
    """Raise the ``mistakes`` found in file ``where`` as one error, so that a user fixes them
    in one go rather than one per try."""
    if len(mistakes) == 1:
        raise ConfigError(mistakes[0].message, hint=mistakes[0].hint or _FIX)
    if mistakes:
        hints = dict.fromkeys(m.hint for m in mistakes if m.hint)
        # the file is named once, up front
        said = [m.message.replace(f" in {where!r}", "").replace(f" of {where!r}", "")
                for m in mistakes]  # fmt: skip
        raise ConfigError(
            f"{len(mistakes)} mistakes in {where!r}: " + "; ".join(said),
            hint="; ".join([_FIX_EACH, *hints]),
        )


Check = Callable[[object], bool]


def _wrong(
    table: str, values: Mapping[str, object], checks: Mapping[str, tuple[Check, str]]
) -> list[_Mistake]:
    """The mistakes among ``values`` of ``table`` (``[serve]``, ``[watch.churn]``): each
    value whose check in ``checks`` (key: the check, what it wants) refuses it."""
    return [
        _Mistake(f"{table} {key} must be {expected} (got {_shown(values[key])!r})")
        for key, (check, expected) in checks.items()
        if key in values and not check(values[key])
    ]


def _unknown(
    table: str, keys: Collection[str], known: Collection[str], where: str, hint: str
) -> list[_Mistake]:
    unknown = sorted(set(keys) - set(known))
    return [_Mistake(f"unknown key(s) {unknown} in {table} of {where!r}", _close(unknown, known)
                     + hint)] if unknown else []  # fmt: skip


def _close(unknown: Sequence[str], known: Collection[str]) -> str:
    """``did you mean 'address'? `` for the first of ``unknown`` close to one of ``known``."""
    import difflib

    for name in unknown:
        close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
        if close:
            return f"did you mean {close[0]!r}? "
    return ""


def _shown(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


_SERVE_SECONDS = "a number of seconds in (0, 3600]"
_SERVE_CHECKS: dict[str, tuple[Check, str]] = {
    "models": (lambda v: v is None or _model_refs(v),
               'a non-empty list of "SYSTEM@ALIAS" or "SYSTEM:vN"'),
    "inference": (lambda v: v in _INFERENCE, f"one of {_quoted(_INFERENCE)}"),
    "poll_seconds": (lambda v: _number(v) and 0 < v <= 3600, _SERVE_SECONDS),
    "max_request_bytes": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "max_batch_rows": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "log_predictions": (lambda v: isinstance(v, bool), "true or false"),
    "log_flush_seconds": (lambda v: _number(v) and 0 < v <= 3600, _SERVE_SECONDS),
    "rollout_step_seconds": (lambda v: _number(v) and 0 <= v <= 86400,
                             "a number of seconds in [0, 86400] (0: the server never steps "
                             "rollouts)"),
}  # fmt: skip
"""What each ``[serve]`` key takes."""


@dataclass(frozen=True)
class ServeSettings:
    """The ``[serve]`` section: what ``regrow serve`` serves and how (see :mod:`regrow.serve`).

    ``models`` names ``SYSTEM@ALIAS`` (followed as the alias moves) or ``SYSTEM:vN`` (pinned);
    None serves every system that has a ``champion`` alias. ``inference`` is ``"open"`` or
    ``"token"`` (then inference needs an API token of role viewer or above; feedback always
    needs operator). Each replica looks for alias moves every ``poll_seconds``. A body over
    ``max_request_bytes`` or a request over ``max_batch_rows`` rows gets a 413. Logged
    predictions are written to the store every ``log_flush_seconds`` (one Parquet file per
    system, hour and flush: shorter means fresher windows and more, smaller files). Every
    ``rollout_step_seconds`` the server analyses and steps each rollout under way of an alias it
    follows (:func:`regrow.rollout.machine.step`; 0: never, leave it to ``regrow rollout
    step``).

    >>> ServeSettings.parse({"models": ["churn@champion"], "poll_seconds": 0.5}).poll_seconds
    0.5
    >>> ServeSettings.parse({"inference": "closed"})
    Traceback (most recent call last):
    ...
    regrow.errors.ConfigError: [serve] inference must be one of 'open', 'token' (got 'closed'); ...
    """

    models: tuple[str, ...] | None = None
    inference: str = "open"
    poll_seconds: float = 2.0
    max_request_bytes: int = 8 * 1024 * 1024
    max_batch_rows: int = 10_000
    log_predictions: bool = True
    log_flush_seconds: float = 10.0
    rollout_step_seconds: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.models, list):  # as TOML and JSON give it
            object.__setattr__(self, "models", tuple(self.models))
        values = {key: getattr(self, key) for key in _SERVE_CHECKS}
        _report(_wrong("[serve]", values, _SERVE_CHECKS), CONFIG_FILE)

    @classmethod
    def parse(cls, section: object, where: str = "config.toml") -> ServeSettings:
        """The settings of a ``[serve]`` table read from TOML (``where`` names the file)."""
        _report(cls._mistakes(section, where), where)
        assert isinstance(section, dict)  # _mistakes: it is a table
        return cls(**section)

    @classmethod
    def _mistakes(cls, section: object, where: str) -> list[_Mistake]:
        if not isinstance(section, dict):
            return [_Mistake(f"[serve] in {where!r} must be a table")]
        known = list(cls.__dataclass_fields__)
        unknown = _unknown("[serve]", section, known, where, f"the keys are {_quoted(known)}")
        return unknown + _wrong("[serve]", section, _SERVE_CHECKS)

    def lines(self) -> list[str]:
        """The TOML lines of the settings that differ from the defaults."""
        default = ServeSettings()
        return [
            f"{key} = {json.dumps(list(v) if isinstance(v, tuple) else v)}"
            for key in self.__dataclass_fields__
            if (v := getattr(self, key)) != getattr(default, key)
        ]


_NOTIFY_ON = ("acted", "waiting", "failed", "quiet")
_WATCH_KEYS = ("source", "every", "notify", "notify_on", "lease_seconds")
_WATCH_CHECKS: dict[str, tuple[Check, str]] = {
    "source": (lambda v: isinstance(v, str) and _source(v),
               '"served", "files:GLOB" or "snapshot:NAME"'),
    "every": (lambda v: isinstance(v, str) and _span(v), "a span above zero, like 15m"),
    "notify": (lambda v: v is None or (isinstance(v, str) and bool(v.strip())),
               "a URL or a command"),
    "notify_on": (lambda v: isinstance(v, list | tuple)
                  and all(isinstance(e, str) and e in _NOTIFY_ON for e in v),
                  f"a list of {_quoted(_NOTIFY_ON)}"),
    "lease_seconds": (lambda v: _integer(v) and v >= 10, "an integer >= 10"),
}  # fmt: skip
"""What each ``[watch]`` key takes."""


@dataclass(frozen=True)
class WatchSettings:
    """The ``[watch]`` section: where ``regrow watch`` takes its windows and whom it tells.

    ``source`` is ``"served"`` (the prediction log and its feedback labels), ``"files:GLOB"``
    (each new file a window; a relative glob is inside the workspace) or ``"snapshot:NAME"``
    (each new snapshot of that name a window). ``every`` is how often the watcher looks for a
    new window (a span such as ``15m``, ``1h``, ``1d``). ``notify`` is a webhook URL (POSTed
    each event as JSON) or a command (run with the event as JSON on stdin); ``notify_on``
    names the events sent: ``acted``, ``waiting`` (for an approval), ``failed``, ``quiet``
    (a cycle that did nothing). A sub-table ``[watch.SYSTEM]`` overrides them for one system.

    >>> WatchSettings.parse({"source": "files:win/*.csv", "shop": {"every": "1h"}}).of("shop").every
    '1h'
    >>> WatchSettings.parse({"source": "kafka:x"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    regrow.errors.ConfigError: [watch] source must be "served", "files:GLOB" or ...
    """

    source: str = "served"
    every: str = "15m"
    notify: str | None = None
    notify_on: tuple[str, ...] = ("acted", "waiting", "failed")
    lease_seconds: int = 120
    systems: dict[str, WatchSettings] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.notify_on, list):
            object.__setattr__(self, "notify_on", tuple(self.notify_on))
        values = {key: getattr(self, key) for key in _WATCH_KEYS}
        _report(_wrong("[watch]", values, _WATCH_CHECKS), CONFIG_FILE)

    @classmethod
    def parse(
        cls, section: object, where: str = "config.toml", *, given: Mapping[str, str] | None = None
    ) -> WatchSettings:
        """The settings of a ``[watch]`` table read from TOML (``where`` names the file).

        ``given`` holds values set elsewhere (the command line's ``--every``): they replace
        the file's in every table, whose own are then neither read nor checked. A mistake
        anywhere in the table is named with all the others.
        """
        given = dict(given or {})
        _report(cls._mistakes(section, where, given), where)
        assert isinstance(section, dict)  # _mistakes: it is a table
        own = {k: v for k, v in section.items() if not isinstance(v, dict)}
        base = {**own, **given}
        systems = {
            str(name): cls(**{**base, **sub, **given})
            for name, sub in section.items()
            if isinstance(sub, dict)
        }
        return cls(**base, systems=systems)

    @classmethod
    def _mistakes(
        cls, section: object, where: str, given: Mapping[str, object] | None = None
    ) -> list[_Mistake]:
        """Every mistake of a ``[watch]`` table and its system tables, and of ``given``."""
        given = dict(given or {})
        for key, value in given.items():  # the command line's own, named alone
            check, expected = _WATCH_CHECKS[key]
            if not check(value):
                hint = f"give another --{key}, or leave it out for [watch] {key} of config.toml"
                if key == "every" and isinstance(value, str) and value.strip().isdigit():
                    hint = f"a span has a unit: --every {value.strip()}m (s, m, h or d)"
                if key == "source" and isinstance(value, str) and ":" not in value:
                    hint = f"a glob of window files is files:GLOB: --source 'files:{value}'"
                raise ConfigError(f"--{key} must be {expected} (got {value!r})", hint=hint)
        mistakes: list[_Mistake] = []
        if not isinstance(section, dict):
            return [*mistakes, _Mistake(f"[watch] in {where!r} must be a table")]
        own = {k: v for k, v in section.items() if not isinstance(v, dict)}
        mistakes += _watch_mistakes("[watch]", own, where, given)
        for name, sub in section.items():
            if isinstance(sub, dict):
                mistakes += _watch_mistakes(f"[watch.{name}]", sub, where, given)
        return mistakes

    def of(self, system: str) -> WatchSettings:
        """The settings for ``system``: its own table's, else these."""
        return self.systems.get(system, self)

    def lines(self) -> list[str]:
        """The TOML lines of ``[watch]`` (and its system tables) where they differ from the
        defaults; empty when nothing does."""

        def changed(settings: WatchSettings, base: WatchSettings) -> list[str]:
            return [
                f"{key} = {json.dumps(list(v) if isinstance(v, tuple) else v)}"
                for key in _WATCH_KEYS
                if (v := getattr(settings, key)) != getattr(base, key)
            ]

        own = changed(self, WatchSettings())
        text = ["[watch]", *own] if own or self.systems else []
        for name, sub in sorted(self.systems.items()):
            text += [f"[watch.{json.dumps(name)}]", *changed(sub, self)]
        return text


def _watch_mistakes(
    table: str, values: Mapping[str, object], where: str, given: Collection[str]
) -> list[_Mistake]:
    """The mistakes of one ``[watch]`` or ``[watch.SYSTEM]`` table, but for the keys
    ``given`` elsewhere (the file's values of those are not read)."""
    hint = f"the keys are {_quoted(_WATCH_KEYS)}, and [watch.SYSTEM] tables"
    read = {k: v for k, v in values.items() if k not in given}
    unknown = _unknown(table, values, _WATCH_KEYS, where, hint)
    meant = _policy_keys([k for k in values if k not in _WATCH_KEYS])
    if meant:  # when to act is the policy's (watch.persistence), not this file's
        said = (
            f"{_quoted(meant)} is a policy setting"
            if len(meant) == 1
            else f"{_quoted(meant)} are policy settings"
        )
        unknown = [
            _Mistake(
                f"{unknown[0].message}: {said}, not the workspace's",
                f"set watch.{meant[0]} under `watch:` in a policy file and load it with "
                f"`regrow policy set FILE`; in config.toml {hint}",
            )
        ]
    return unknown + _wrong(table, read, _WATCH_CHECKS)


def _policy_keys(unknown: Sequence[str]) -> list[str]:
    """The keys of the policy's ``watch`` section that ``unknown`` keys of a ``[watch]``
    table look like (``persistance``: ``persistence``)."""
    if not unknown:
        return []
    import difflib

    from regrow.plan.policy import WatchPolicy

    rules = list(WatchPolicy.model_fields)
    return [m[0] for k in unknown if (m := difflib.get_close_matches(str(k), rules, n=1))]


_SPAN_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def span_seconds(text: str) -> float | None:
    """The seconds of a span written as a number and a unit (``30s``, ``15m``, ``1.5h``,
    ``1d``, ``2w``), or None when it cannot be read as one (no unit, not a finite number).

    >>> span_seconds("15m"), span_seconds("soon")
    (900.0, None)
    """
    head, unit = text.strip()[:-1], text.strip()[-1:]
    try:
        seconds = float(head) * _SPAN_UNITS[unit]
    except (KeyError, ValueError):
        return None
    return seconds if math.isfinite(seconds) else None


def _span(text: str) -> bool:
    seconds = span_seconds(text)
    return seconds is not None and seconds > 0


def _source(text: str) -> bool:
    return (
        text == "served"
        or (text.startswith("files:") and len(text) > 6)
        or (text.startswith("snapshot:") and len(text) > 9)
    )


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _model_refs(value: object) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) > 0
        and all(isinstance(m, str) and _model_ref(m) for m in value)
    )


def _model_ref(ref: str) -> bool:
    """Whether ``ref`` looks like ``SYSTEM@ALIAS`` or ``SYSTEM:vN`` (names checked later)."""
    if "@" in ref:
        system, _, alias = ref.partition("@")
        return bool(system.strip()) and bool(alias.strip()) and "@" not in alias
    system, _, number = ref.rpartition(":v")
    return bool(system.strip()) and number.isdigit()


def restore_folder(path: Path, before: Collection[Path], *, made: bool) -> None:
    """Leave folder ``path`` as it was before a workspace was begun in it: remove what is
    not in ``before`` (its entries then), and the folder itself when it was ``made`` then.
    A half-made workspace (a catalog without a config, half a rebuild) is no workspace, and
    it is in the way of the next attempt."""
    for entry in set(path.iterdir()) - set(before):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    if made and not any(path.iterdir()):
        path.rmdir()


def resolve_home(home: str | os.PathLike[str] | None) -> Path:
    """The workspace folder: ``home``, else ``$REGROW_HOME``, else ``./.regrow``."""
    chosen = home if home is not None else os.environ.get("REGROW_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser().absolute()


def find_home(home: str | os.PathLike[str] | None = None, *, start: Path | None = None) -> Path:
    """The workspace to open: ``home``, else ``$REGROW_HOME``, else the nearest one at or
    above ``start`` (default: the current folder), as git finds its repository: a
    ``.regrow`` folder holding a workspace, or the folder itself when it is one (``regrow
    init .``); else :class:`~regrow.errors.WorkspaceNotFound`.

    >>> import tempfile
    >>> top = Path(tempfile.mkdtemp()).resolve()
    >>> _ = Config(home=top / ".regrow").write()
    >>> (top / "data" / "2026").mkdir(parents=True)
    >>> find_home(start=top / "data" / "2026") == top / ".regrow" or "REGROW_HOME" in os.environ
    True
    """
    if home is not None or os.environ.get("REGROW_HOME"):
        return resolve_home(home)
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        # a .regrow folder is regrow's even with a broken config.toml: loading it names the
        # mistakes (skipping it went on to a workspace further up, or to "no workspace")
        if (folder / DEFAULT_HOME / CONFIG_FILE).is_file():
            return folder / DEFAULT_HOME
        if _is_workspace(folder):
            return folder
    raise WorkspaceNotFound(
        f"no regrow workspace in {str(here)!r} or any folder above it",
        hint=f"create one with `regrow init` (it makes {DEFAULT_HOME} here), or pass --home / "
        "set REGROW_HOME",
    )


def _is_workspace(folder: Path) -> bool:
    """Whether ``folder`` holds a regrow ``config.toml``: one whose tables are all regrow's
    (another tool's ``config.toml`` in a parent folder is not taken for one)."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        return False
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    return bool(data) and set(data) <= _SECTIONS


def _url_section(
    data: dict[str, object], name: str, where: str, mistakes: list[_Mistake]
) -> str | None:
    """The ``url`` of table ``name`` (``[catalog]``, ``[store]``); its mistakes join
    ``mistakes``."""
    section = data.get(name, {})
    if not isinstance(section, dict):
        mistakes.append(_Mistake(f"[{name}] in {where!r} must be a table"))
        return None
    mistakes += _unknown(f"[{name}]", section, ["url"], where, "the key is 'url'")
    url = section.get("url")
    if url is not None and (not isinstance(url, str) or not url.strip()):
        mistakes.append(_Mistake(
            f"[{name}] url in {where!r} must be a non-empty string (got {url!r})",
            hint='a database URL such as "sqlite:///catalog.db"' if name == "catalog"
            else 'a folder or an fsspec URL such as "artifacts" or "s3://bucket/regrow"',
        ))  # fmt: skip
        return None
    return url


def _run_section(
    data: dict[str, object], where: str, mistakes: list[_Mistake]
) -> dict[str, object]:
    """The ``[run]`` table, its wrong values left out; its mistakes join ``mistakes``."""
    section = data.get("run", {})
    if not isinstance(section, dict):
        mistakes.append(_Mistake(f"[run] in {where!r} must be a table"))
        return {}
    hint = "the keys are 'backend', 'address' and 'workers'"
    mistakes += _unknown("[run]", section, _RUN_KEYS, where, hint)
    chosen = dict(section)
    for key in ("backend", "address"):
        value = section.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            mistakes.append(_Mistake(
                f"[run] {key} in {where!r} must be a non-empty string (got {value!r})",
                hint='for example backend = "ray" and address = "10.0.0.5:6379"',
            ))  # fmt: skip
            del chosen[key]
    backend = chosen.get("backend")
    if isinstance(backend, str) and backend.strip() and backend not in BACKENDS:
        mistakes.append(_Mistake(
            f"[run] backend in {where!r} must be one of {_quoted(BACKENDS)} (got {backend!r})",
            hint=_close([backend], BACKENDS) + "local runs here, ray on a Ray cluster",
        ))  # fmt: skip
        del chosen["backend"]
    workers = section.get("workers")
    if workers is not None and not (_integer(workers) and workers >= 1):
        mistakes.append(_Mistake(
            f"[run] workers in {where!r} must be an integer >= 1 (got {workers!r})",
            hint="for example workers = 4",
        ))  # fmt: skip
    return chosen


def _allow_os_user(data: dict[str, object], where: str, mistakes: list[_Mistake]) -> bool:
    """``[auth] os_user`` (default True), turned off by ``$REGROW_ALLOW_OS_USER=0``; the
    mistakes join ``mistakes``.

    The environment only tightens: ``1`` cannot turn on what the file turned off, so that
    a workspace's "tokens only" holds whatever a shell exports.
    """
    env = os.environ.get("REGROW_ALLOW_OS_USER", "").strip().lower()
    if env and env not in _FLAGS:
        mistakes.append(_Mistake(
            f"REGROW_ALLOW_OS_USER must be 0 or 1 (got {env!r})",
            hint="0 lets only API tokens identify; unset it to use [auth] os_user of "
            "config.toml",
        ))  # fmt: skip
    section = data.get("auth", {})
    if not isinstance(section, dict):
        mistakes.append(_Mistake(f"[auth] in {where!r} must be a table"))
        return False
    mistakes += _unknown("[auth]", section, ["os_user"], where, "the key is 'os_user'")
    value = section.get("os_user", True)
    if not isinstance(value, bool):
        mistakes.append(_Mistake(
            f"[auth] os_user in {where!r} must be true or false (got {value!r})",
            hint="os_user = false lets only API tokens identify who acts",
        ))  # fmt: skip
        return False
    return value and _FLAGS.get(env, True)


@dataclass(frozen=True)
class Config:
    """A workspace's settings, with environment overrides applied by :meth:`load`."""

    home: Path
    catalog_url: str = DEFAULT_CATALOG_URL
    store_url: str = DEFAULT_STORE_URL
    backend: str = DEFAULT_BACKEND
    address: str | None = None
    workers: int | None = None
    allow_os_user: bool = True
    serve: ServeSettings = ServeSettings()
    costs: CostProfile = field(default_factory=CostProfile)  # cost accounting (#18): [costs]
    watch_table: dict[str, Any] = field(default_factory=dict)
    """The ``[watch]`` table as the file holds it: read and checked when :attr:`watch` or
    :meth:`watch_for` is, so that a mistake in it stops `regrow watch`, not every command."""

    @property
    def watch(self) -> WatchSettings:
        """The ``[watch]`` settings (a :class:`~regrow.errors.ConfigError` names every mistake
        of the table)."""
        return WatchSettings.parse(self.watch_table, str(self.home / CONFIG_FILE))

    def watch_for(self, system: str, **given: str | None) -> WatchSettings:
        """The settings ``regrow watch`` watches ``system`` with: ``given`` (the command
        line's ``every`` or ``source``; None: not given) in place of the file's, which are
        then neither read nor checked.

        >>> cfg = Config(home=Path("/tmp/ws"), watch_table={"every": "-5m"})
        >>> cfg.watch_for("churn", every="1h").every
        '1h'
        >>> cfg.watch_for("churn")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        regrow.errors.ConfigError: [watch] every must be a span above zero, ... (got '-5m'); ...
        """
        chosen = {key: value for key, value in given.items() if value is not None}
        where = str(self.home / CONFIG_FILE)
        return WatchSettings.parse(self.watch_table, where, given=chosen).of(system)

    def resolved_catalog_url(self) -> str:
        """The catalog URL with a relative SQLite path made absolute inside the workspace."""
        url = self.catalog_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////"):
            rest = url[len(prefix) :]
            if rest and rest != ":memory:" and not rest.startswith("file:"):
                return prefix + str(self.home / rest)
        return url

    def resolved_store_url(self) -> str:
        """The store URL with a relative folder made absolute inside the workspace."""
        url = self.store_url
        if "://" in url or Path(url).is_absolute():
            return url
        return str(self.home / url)

    def backend_options(self) -> dict[str, Any]:
        """The ``[run]`` settings as keyword arguments of
        :func:`regrow.run.backends.make_backend`, e.g. ``make_backend(**cfg.backend_options())``.

        >>> Config(home=Path("/tmp/ws"), backend="ray", address="10.0.0.5:6379").backend_options()
        {'name': 'ray', 'address': '10.0.0.5:6379', 'workers': None}
        """
        return {"name": self.backend, "address": self.address, "workers": self.workers}

    @classmethod
    def load(cls, home: Path) -> Config:
        """Read ``home/config.toml`` and apply the environment overrides."""
        path = home / CONFIG_FILE
        if not path.is_file():
            raise WorkspaceNotFound(
                f"no regrow workspace at {str(home)!r} (no {CONFIG_FILE})",
                hint=f"create one with `regrow init {home}`, or pass --home / set REGROW_HOME",
            )
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot parse {str(path)!r}: {exc}", hint="fix the TOML syntax"
            ) from exc
        where = str(path)
        mistakes: list[_Mistake] = []
        unknown = sorted(set(data) - _SECTIONS)
        if unknown:
            mistakes.append(_Mistake(
                f"unknown section(s) {unknown} in {where!r}",
                hint=_close(unknown, _SECTIONS) + "the sections are [catalog], [store], [run], "
                "[auth], [serve], [costs] and [watch]",
            ))  # fmt: skip
        catalog = _url_section(data, "catalog", where, mistakes)
        store = _url_section(data, "store", where, mistakes)
        run = _run_section(data, where, mistakes)
        allow_os_user = _allow_os_user(data, where, mistakes)
        mistakes += ServeSettings._mistakes(data.get("serve", {}), where)
        costs, wrong = CostProfile.read(data.get("costs", {}), where)
        mistakes += [_Mistake(e.message, e.hint) for e in wrong]
        watch = data.get("watch", {})
        if mistakes:  # then the file is fixed anyway: name [watch]'s mistakes too
            mistakes += WatchSettings._mistakes(watch, where)
        _report(mistakes, where)
        backend = os.environ.get("REGROW_BACKEND") or run.get("backend") or DEFAULT_BACKEND
        address = os.environ.get("REGROW_RAY_ADDRESS") or run.get("address")
        workers = run.get("workers")
        return cls(
            home=home,
            catalog_url=os.environ.get("REGROW_CATALOG_URL") or catalog or DEFAULT_CATALOG_URL,
            store_url=os.environ.get("REGROW_STORE_URL") or store or DEFAULT_STORE_URL,
            backend=str(backend),
            address=None if address is None else str(address),
            workers=workers if isinstance(workers, int) else None,
            allow_os_user=allow_os_user,
            serve=ServeSettings.parse(data.get("serve", {}), where),
            costs=costs,
            watch_table=watch,
        )

    def write(self) -> Path:
        """Write ``config.toml`` (atomically) and return its path."""
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / CONFIG_FILE
        text = (
            "# regrow workspace configuration\n"
            f"[catalog]\nurl = {json.dumps(self.catalog_url)}\n\n"
            f"[store]\nurl = {json.dumps(self.store_url)}\n"
        )
        run: dict[str, str | int | None] = {
            "backend": self.backend if self.backend != DEFAULT_BACKEND else None,
            "address": self.address,
            "workers": self.workers,
        }
        lines = [f"{k} = {json.dumps(v)}" for k, v in run.items() if v is not None]
        if lines:
            text += "\n[run]\n" + "\n".join(lines) + "\n"
        if not self.allow_os_user:
            text += "\n[auth]\nos_user = false\n"
        if serve := self.serve.lines():
            text += "\n[serve]\n" + "\n".join(serve) + "\n"
        if costs := self.costs.lines():
            text += "\n" + "\n".join(costs) + "\n"
        if watch := self.watch.lines():
            text += "\n" + "\n".join(watch) + "\n"
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        return path
