"""Batch scoring of a file (``regrow predict``), on the serving path.

A file's rows are coerced to the version's signature as a request's are
(:func:`~regrow.serve.oip.frame_columns`, :func:`~regrow.serve.oip.decode`) and scored by
:meth:`~regrow.serve.served.Served.score`, the one scoring path of the HTTP app, so that a
file scored here and the same rows sent to ``regrow serve`` get the same outputs.

=============================  ===============================================================
file                           read as
=============================  ===============================================================
``.csv``                       a table with a header row (one column per input; others kept)
``.parquet``, ``.pq``          a table
``.json``                      an Open Inference Protocol infer request body
=============================  ===============================================================

The output's suffix picks its format: a table (``.csv``, ``.parquet``) holds the file's
columns followed by ``predict`` and, for classification, ``proba__<class>`` per class (as in
the prediction log); ``.json`` is the infer response body.
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from regrow.errors import ConfigError, DataError, RegrowError
from regrow.serve.batching import predicting
from regrow.serve.errors import BadRequest
from regrow.serve.oip import decode, encode, frame_columns, json_ready

if TYPE_CHECKING:
    from regrow.catalog.records import SystemVersionRecord
    from regrow.serve.served import Served
    from regrow.workspace import Workspace

__all__ = ["Scored", "score_file"]

_TABLES = (".csv", ".parquet", ".pq")
_CHUNK = 50_000


@dataclass(frozen=True)
class Scored:
    """What :func:`score_file` did: rows scored, by which version, written where."""

    rows: int
    version: str
    output: Path


def score_file(ws: Workspace, ref: str, source: Path, output: Path) -> Scored:
    """Score the rows of ``source`` with version ``ref`` (``churn:v2``, ``churn@champion``)
    and write them to ``output`` (see the module docs)."""
    from regrow.serve.served import load_served

    for path, role in ((source, "input"), (output, "output")):
        if path.suffix.lower() not in (*_TABLES, ".json"):
            raise ConfigError(
                f"cannot tell the format of the {role} file {str(path)!r} from its suffix",
                hint="use .csv, .parquet or .json (an infer request or response body)",
            )
    if not source.is_file():
        raise ConfigError(f"no such file {str(source)!r}", hint="check the path")
    version = ws.catalog.get_system_version(ref)
    served = load_served(ws.catalog, ws.store, version, golden_rows=0, home=str(ws.home))
    request_id = None
    if source.suffix.lower() == ".json":
        decoded = decode(_read_json(source), served.signature)
        request_id = decoded.id
        frame = pd.DataFrame(decoded.columns)
        with predicting():
            outputs = served.score(decoded.columns)
    else:
        text = [t.name for t in served.signature.inputs if t.dtype in ("string", "category")]
        frame = _read_table(source, text)
        try:
            outputs = _score_frame(served, frame)
        except (BadRequest, DataError) as exc:  # said for a server's client: say it for a file
            if frame.empty:
                raise
            raise _file_error(ws, version, served, frame, exc, source) from exc
    rows = len(frame)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".json":
        body = encode(
            model_name=version.system, model_version=version.ref.split(":")[1],
            request_id=request_id or source.stem, outputs=outputs, signature=served.signature,
            parameters={"system_version": version.ref},
        )  # fmt: skip
        output.write_text(json.dumps(json_ready(body)))
    else:
        _write_table(_with_outputs(frame, outputs, served), output)
    return Scored(rows, version.ref, output)


def _score_frame(served: Served, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    if frame.empty:
        raise DataError("the file has no rows", hint="score a file with at least one row")
    with predicting():
        parts = [
            served.score(frame_columns(frame.iloc[i : i + _CHUNK], served.signature))
            for i in range(0, len(frame), _CHUNK)
        ]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _file_error(
    ws: Workspace,
    version: SystemVersionRecord,
    served: Served,
    frame: pd.DataFrame,
    exc: RegrowError,
    source: Path,
) -> DataError:
    """What a file the version could not score must change, from the monitor's data-quality
    check of its rows (:func:`regrow.monitoring.window_quality`: which values a member cannot
    take): its empty cells when those are what a member refuses (named with their rows,
    counted from 0 as `regrow monitor` counts them), else the check's findings, else the
    model's own complaint; with a hint for a file, not a request: for a missing input
    column, the file's column that may be it renamed (as `regrow monitor` says), and how to
    bridge a rename with an adapter."""
    from regrow.monitoring import window_quality

    try:
        check = window_quality(ws._services(), version, frame, served.model)
        blocked = [f for f in check.findings if f.unusable]
    except RegrowError:  # a member fails on clean rows too: its own complaint says more
        blocked = []
    missing, renamed = _absent(ws, version, served, frame)
    empty = [f for f in blocked if f.kind == "nulls"]
    if empty and not missing:  # a missing column is what to fix first
        said = "; ".join(
            f"{f.column!r} in {f.rows:,} row(s) (rows {', '.join(str(r) for r in f.examples)}"
            + (", ..." if f.rows > len(f.examples) else "")
            + ")"
            for f in empty
        )
        return DataError(
            f"the model cannot score rows with empty values (rows count from 0): {said}",
            hint="fill those cells or drop those rows before scoring, or give the system a "
            "Default adapter for the column (docs/contracts.md)",
        )
    hint = (
        _missing_hint(version, source, missing, renamed)
        if missing
        else "the file's values must be like those the model was trained on (`regrow snapshot "
        "show` of its training snapshot lists them)"
    )
    if blocked:
        message = "the model cannot score some rows: " + "; ".join(f.described for f in blocked)
    else:
        message = exc.message.removeprefix("the model cannot predict on these inputs: ")
    if renamed and "renamed?" not in message:
        notes = [f"the file has {new!r}, which the training data lacks: renamed?"
                 for new in renamed.values()]  # fmt: skip
        if len(missing) > 1:
            notes = [f"{old!r}: {note}" for old, note in zip(renamed, notes, strict=True)]
        message += f" ({'; '.join(notes)})"
    return DataError(message, hint=hint)


def _absent(
    ws: Workspace, version: SystemVersionRecord, served: Served, frame: pd.DataFrame
) -> tuple[list[str], dict[str, str]]:
    """The inputs ``frame`` lacks, and for each the file's column that may be it renamed:
    the closest name among the columns neither read by the version nor in its training
    snapshot (the match `regrow monitor` makes: "the window has 'x_2', ...: renamed?")."""
    import difflib

    signature = served.signature
    given = set(map(str, frame.columns))
    missing = [
        n
        for n in signature.input_names
        if n not in given
        and n not in signature.optional
        and not any(a in given for a, to in signature.aliases.items() if to == n)
    ]
    if not missing:
        return [], {}
    known = {*signature.input_names, *signature.aliases}
    if version.snapshot_id is not None:
        with suppress(RegrowError):  # the file's error matters more than the snapshot's
            known.update(ws.catalog.get_snapshot(version.snapshot_id).columns)
    extra = [c for c in map(str, frame.columns) if c not in known]
    renamed: dict[str, str] = {}
    for name in missing:
        free = [c for c in extra if c not in renamed.values()]
        close = difflib.get_close_matches(name, free, n=1, cutoff=0.3)
        if close:
            renamed[name] = close[0]
    return missing, renamed


def _missing_hint(
    version: SystemVersionRecord, source: Path, missing: list[str], renamed: dict[str, str]
) -> str:
    """How to give the version the input columns a file lacks (see :func:`_file_error`)."""
    import shlex

    stored = f"{version.system}-new"
    bridge = (
        f"`regrow snapshot create {shlex.quote(str(source))} --name {stored}`, then "
        f"`regrow adapters propose {stored} --system {version.system} --version "
        f"{version.ref}` proposes the boundary adapters (--apply makes a version that reads "
        "the file as it is, nothing re-fitted)"
    )
    lacking = ", ".join(repr(n) for n in missing if n not in renamed)
    if not renamed:
        them = "it" if len(missing) == 1 else "them"
        return f"add {lacking} to the file; if upstream renamed or dropped {them}: {bridge}"
    back = ", ".join(f"{new!r} back to {old!r}" for old, new in renamed.items())
    add = f" and add {lacking}" if lacking else ""
    return f"in the file, rename {back}{add}; or bridge the rename: {bridge}"


def _with_outputs(
    frame: pd.DataFrame, outputs: dict[str, np.ndarray], served: Served
) -> pd.DataFrame:
    result = frame.reset_index(drop=True).copy()
    result["predict"] = outputs["predict"]
    classes = served.signature.classes
    if classes is not None:
        for j, cls in enumerate(classes):
            result[f"proba__{cls}"] = outputs["probabilities"][:, j]
    return result


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot read {str(path)!r} as JSON: {exc}",
            hint="a .json input is an infer request body",
        ) from exc


def _read_table(path: Path, text: list[str]) -> pd.DataFrame:
    """The rows of a table file; in a CSV, the ``text`` columns are read as strings (a plan
    code ``01`` stays ``"01"``, as the server takes it)."""
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path, dtype=dict.fromkeys(text, str), keep_default_na=True)
        return pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc}", hint="check the file") from exc


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix.lower() == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    tmp.replace(path)
