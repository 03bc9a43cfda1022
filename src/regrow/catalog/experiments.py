"""Experiment records: ``catalog.experiments``.

Every change to a system is an experiment: a plan (``kind="plan"``), a change made by hand
(``"manual"``) or a rollout (``"rollout"``) carries a record of why it was made (the
rationale), what it was expected to achieve (``expected``: the loss before and after, the gain
with its interval, the estimated CPU cost), what happens if it fails (the contingency) and free
tags. When the change produces a candidate version the record gets ``candidate_id``; once the
candidate is evaluated it gets ``evaluation_id`` and ``actual`` (the evaluation's metric, delta
with its interval and verdict), so expected and actual read side by side.

A record's id is derived from its kind and subject (the plan, run or rollout it records), so
recording the same plan twice returns the first record. Every write is one transaction with
an audit event (``experiment.create``, ``experiment.update``) that covers the row.

==================  ==============================================================
``add``             record an experiment (idempotent per kind and subject)
``get``             one record by id or unique id prefix (>= 6 characters)
``list``            newest first, by system, tag, kind, subject or candidate
``set_candidate``   the version the experiment produced (set once)
``set_actual``      the evaluation of the candidate and what it measured
``set_contingency`` change the contingency, until a candidate exists
``tag``             add tags
==================  ==============================================================

>>> from regrow.catalog import Catalog
>>> catalog = Catalog("sqlite://")
>>> record = catalog.experiments.add(kind="rollout", system="churn", subject_id="r1",
...     rationale=["ramp the new member up"], contingency="roll back", tags=["q3"])
>>> catalog.experiments.get(record.id[:8]).tags
('q3',)
>>> [e.id for e in catalog.experiments.list(tag="q3")] == [record.id]
True
>>> catalog.close()
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from regrow._hashing import sha256_hex
from regrow.catalog import audit, checks, lookup
from regrow.catalog.core import now
from regrow.catalog.models import Evaluation, Experiment, Plan, Run
from regrow.errors import CatalogError, ConfigError, NotFound

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog

__all__ = [
    "KINDS",
    "TAG_PATTERN",
    "ExperimentRecord",
    "Experiments",
    "check_contingency",
    "check_tags",
    "experiment_id",
]

#: What an experiment records: a plan, a change made by hand, a rollout.
KINDS = ("plan", "manual", "rollout")
#: Tags: letters, digits and ``_ . : / = + -``, at most 64 characters.
TAG_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.:/=+\-]{0,63}"
_TAG = re.compile(TAG_PATTERN)
_MAX_CONTINGENCY = 4000
_SHOWN = 5


@dataclass(frozen=True)
class ExperimentRecord:
    """A stored experiment (see the module docs).

    ``subject_id`` is the plan (kinds ``plan`` and ``manual``), run (``manual`` changes made
    without a plan) or rollout it records; ``version_id`` the version it started from;
    ``candidate_id`` the version it produced; ``actual`` is None until the candidate is
    evaluated.
    """

    id: str
    kind: str
    system: str
    subject_id: str
    version_id: str | None
    candidate_id: str | None
    evaluation_id: str | None
    actor: str
    rationale: tuple[str, ...]
    expected: dict[str, Any]
    contingency: str
    tags: tuple[str, ...]
    actual: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


def experiment_id(kind: str, subject_id: str) -> str:
    """The id of the experiment of ``kind`` on ``subject_id``.

    >>> experiment_id("plan", "3f2a") == experiment_id("plan", "3f2a")
    True
    >>> experiment_id("plan", "3f2a") == experiment_id("manual", "3f2a")
    False
    """
    return sha256_hex(f"experiment:{kind}:{subject_id}".encode())[:32]


def check_tags(tags: Iterable[str] | str) -> tuple[str, ...]:
    """``tags`` without repeats, in order, each checked against :data:`TAG_PATTERN`.

    >>> check_tags(["q3", "churn", "q3"])
    ('q3', 'churn')
    >>> check_tags(["no spaces"])
    Traceback (most recent call last):
    ...
    regrow.errors.ConfigError: tag 'no spaces' is not a valid tag; use letters, digits ...
    """
    values = checks.texts("tags", [tags] if isinstance(tags, str) else builtins.list(tags))
    for tag in values:
        if not _TAG.fullmatch(tag):
            raise ConfigError(
                f"tag {tag!r} is not a valid tag",
                hint="use letters, digits and _ . : / = + - (at most 64 characters), "
                "e.g. 'q3-drift'",
            )
    return tuple(dict.fromkeys(values))


def check_contingency(text: str) -> str:
    """``text`` if it is a non-empty contingency of at most 4,000 characters."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(
            f"the contingency must be a non-empty sentence (got {text!r})",
            hint="say what happens if the candidate fails, e.g. 'keep churn:v3'",
        )
    return checks.text("contingency", text.strip(), max_length=_MAX_CONTINGENCY)


class Experiments:
    """Experiment records (see the module docs), as ``catalog.experiments``."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def add(
        self,
        *,
        kind: str,
        system: str,
        subject_id: str,
        contingency: str,
        version_id: str | None = None,
        candidate_id: str | None = None,
        rationale: Iterable[str] = (),
        expected: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        actor: str | None = None,
    ) -> ExperimentRecord:
        """Record the experiment of ``kind`` on ``subject_id``; an existing one is returned
        as it is (use :meth:`tag` to add tags to it).

        A plan subject (kinds ``plan``, ``manual``) must be a stored plan, or for ``manual``
        a stored run. Audit event ``experiment.create``.
        """
        kind = _kind(kind)
        system = checks.text("system", system)
        subject_id = checks.identifier("subject_id", subject_id)
        lines = checks.texts(
            "rationale", rationale if isinstance(rationale, str) else builtins.list(rationale)
        )
        body = audit.normalize(checks.mapping("expected", expected or {}))
        plan_b = check_contingency(contingency)
        labels = check_tags(tags)
        who = self._catalog._who(actor)
        id = experiment_id(kind, subject_id)

        def write(session: Session) -> ExperimentRecord:
            existing = session.get(Experiment, id)
            if existing is not None:
                return _record(existing)
            _check_subject(session, kind, subject_id)
            for name, ref in (("version", version_id), ("candidate", candidate_id)):
                if ref is not None and lookup.version_by_id(session, ref).system != system:
                    raise CatalogError(
                        f"the {name} {ref[:12]} is not a version of {system!r}",
                        hint="an experiment records versions of one system",
                    )
            stamp = now()
            row = Experiment(
                id=id,
                kind=kind,
                system=system,
                subject_id=subject_id,
                version_id=version_id,
                candidate_id=candidate_id,
                evaluation_id=None,
                actor=who,
                rationale=builtins.list(lines),
                expected=body,
                contingency=plan_b,
                tags=builtins.list(labels),
                actual=None,
                created_at=stamp,
                updated_at=stamp,
            )
            session.add(row)
            audit.append(
                session,
                actor=who,
                action="experiment.create",
                subject=f"experiment:{id}",
                payload={"kind": kind, "system": system, "subject": subject_id,
                         "version_id": version_id, "tags": builtins.list(labels)},
                rows=[("experiments", id)],
            )  # fmt: skip
            return _record(row)

        return self._catalog._write(write, retry_on=("pk_experiments",))

    def get(self, ref: str) -> ExperimentRecord:
        """The experiment with this id or unique id prefix (at least 6 characters)."""
        with self._catalog._read() as session:
            return _record(_row(session, ref))

    def list(
        self,
        *,
        system: str | None = None,
        tag: str | None = None,
        kind: str | None = None,
        subject_id: str | None = None,
        candidate_id: str | None = None,
        limit: int = 50,
    ) -> builtins.list[ExperimentRecord]:
        """The latest ``limit`` experiments, newest first, filtered by what is given."""
        query = (
            sa.select(Experiment)
            .order_by(Experiment.created_at.desc(), Experiment.id)
            .limit(checks.integer("limit", limit))
        )
        if system is not None:
            query = query.where(Experiment.system == system)
        if kind is not None:
            query = query.where(Experiment.kind == _kind(kind))
        if subject_id is not None:
            query = query.where(Experiment.subject_id == subject_id)
        if candidate_id is not None:
            query = query.where(Experiment.candidate_id == candidate_id)
        if tag is not None:
            query = query.where(self._has_tag(check_tags([tag])[0]))
        with self._catalog._read() as session:
            return [_record(row) for row in session.scalars(query)]

    def set_candidate(
        self, ref: str, candidate_id: str, *, actor: str | None = None
    ) -> ExperimentRecord:
        """Record ``candidate_id`` as the version experiment ``ref`` produced.

        Set once: the same candidate again changes nothing, another one is refused.
        Audit event ``experiment.update``.
        """
        candidate_id = checks.identifier("candidate_id", candidate_id)
        who = self._catalog._who(actor)

        def write(session: Session) -> ExperimentRecord:
            row = _row(session, ref)
            if row.candidate_id == candidate_id:
                return _record(row)
            if row.candidate_id is not None:
                raise CatalogError(
                    f"experiment {row.id[:12]} already produced {row.candidate_id[:12]}",
                    hint="a candidate is recorded once; record the new change as an "
                    "experiment of its own",
                )
            version = lookup.version_by_id(session, candidate_id)
            if version.system != row.system:
                raise CatalogError(
                    f"version {version.system}:v{version.number} is not a version of "
                    f"{row.system!r}",
                    hint="an experiment records versions of one system",
                )
            row.candidate_id = candidate_id
            return _updated(session, row, who, {"candidate_id": candidate_id})

        return self._catalog._write(write)

    def set_actual(
        self,
        ref: str,
        *,
        evaluation_id: str,
        actual: Mapping[str, Any],
        actor: str | None = None,
    ) -> ExperimentRecord:
        """Record what the evaluation ``evaluation_id`` of the candidate measured.

        The evaluation must be of this experiment's candidate. Audit ``experiment.update``.
        """
        evaluation_id = checks.identifier("evaluation_id", evaluation_id)
        body = audit.normalize(checks.mapping("actual", actual))
        who = self._catalog._who(actor)

        def write(session: Session) -> ExperimentRecord:
            row = _row(session, ref)
            evaluation = session.get(Evaluation, evaluation_id)
            if evaluation is None:
                raise NotFound("evaluation", evaluation_id, hint="record the evaluation first")
            if row.candidate_id is None or evaluation.candidate_id != row.candidate_id:
                raise CatalogError(
                    f"evaluation {evaluation_id[:12]} is not of the candidate of experiment "
                    f"{row.id[:12]} ({(row.candidate_id or 'none yet')[:12]})",
                    hint="evaluate the version the experiment produced",
                )
            if row.evaluation_id == evaluation_id and row.actual == body:
                return _record(row)
            row.evaluation_id, row.actual = evaluation_id, body
            return _updated(
                session, row, who, {"evaluation_id": evaluation_id, "verdict": body.get("verdict")}
            )

        return self._catalog._write(write)

    def set_contingency(
        self, ref: str, contingency: str, *, actor: str | None = None
    ) -> ExperimentRecord:
        """Change the contingency of experiment ``ref`` while it has produced nothing yet.

        Once a candidate exists the record says what was intended before the outcome was
        known, and stays as it is. Audit event ``experiment.update``.
        """
        text = check_contingency(contingency)
        who = self._catalog._who(actor)

        def write(session: Session) -> ExperimentRecord:
            row = _row(session, ref)
            if row.contingency == text:
                return _record(row)
            if row.candidate_id is not None:
                raise CatalogError(
                    f"experiment {row.id[:12]} already produced {row.candidate_id[:12]}: its "
                    f"contingency ({row.contingency!r}) is kept as it was",
                    hint="record what you will do now as a new experiment, or add a tag",
                )
            row.contingency = text
            return _updated(session, row, who, {"contingency": text})

        return self._catalog._write(write)

    def tag(
        self, ref: str, tags: Iterable[str] | str, *, actor: str | None = None
    ) -> ExperimentRecord:
        """Add ``tags`` to experiment ``ref`` (tags it has already are kept once).

        Audit event ``experiment.update`` when a tag is new.
        """
        labels = check_tags(tags)
        if not labels:
            raise ConfigError("no tag given", hint="name one or more tags, e.g. q3-drift")
        who = self._catalog._who(actor)

        def write(session: Session) -> ExperimentRecord:
            row = _row(session, ref)
            added = [t for t in labels if t not in row.tags]
            if not added:
                return _record(row)
            row.tags = [*row.tags, *added]
            return _updated(session, row, who, {"tags_added": added})

        return self._catalog._write(write)

    def _has_tag(self, tag: str) -> sa.ColumnElement[bool]:
        """Whether an experiment's JSON list of tags holds ``tag``, in SQL."""
        if self._catalog.dialect == "postgresql":
            holds: sa.ColumnElement[bool] = sa.cast(Experiment.tags, JSONB).has_key(tag)
            return holds
        items = sa.func.json_each(Experiment.tags).table_valued("value")
        return sa.exists(sa.select(1).select_from(items).where(items.c.value == tag))


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(
            f"unknown experiment kind {kind!r}", hint=f"use one of {', '.join(KINDS)}"
        )
    return kind


def _check_subject(session: Session, kind: str, subject_id: str) -> None:
    """A plan experiment's plan exists; a manual one's plan or run does."""
    if kind == "rollout":
        return  # rollouts are recorded by their own part of the catalog
    if session.get(Plan, subject_id) is not None:
        return
    if kind == "manual" and session.get(Run, subject_id) is not None:
        return
    raise NotFound(
        "plan" if kind == "plan" else "plan or run",
        subject_id,
        hint="store the plan (or run) first; an experiment records a stored change",
    )


def _row(session: Session, ref: str) -> Experiment:
    ref = checks.text("experiment", ref, max_length=64)
    return lookup.by_id(
        session, Experiment, "experiment", ref, listed="`regrow experiments list`",
        describe=lambda r: f"{r.id[:12]} ({r.kind} of {r.system})",
    )  # fmt: skip


def _updated(
    session: Session, row: Experiment, who: str, change: dict[str, Any]
) -> ExperimentRecord:
    """Stamp ``row`` as updated and audit ``change`` (``experiment.update``, covering the row)."""
    row.updated_at = now()
    audit.append(
        session,
        actor=who,
        action="experiment.update",
        subject=f"experiment:{row.id}",
        payload=change,
        rows=[("experiments", row.id)],
    )
    return _record(row)


def _record(row: Experiment) -> ExperimentRecord:
    return ExperimentRecord(
        id=row.id,
        kind=row.kind,
        system=row.system,
        subject_id=row.subject_id,
        version_id=row.version_id,
        candidate_id=row.candidate_id,
        evaluation_id=row.evaluation_id,
        actor=row.actor,
        rationale=tuple(row.rationale),
        expected=dict(row.expected),
        contingency=row.contingency,
        tags=tuple(row.tags),
        actual=dict(row.actual) if row.actual is not None else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
