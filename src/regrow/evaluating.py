"""Evaluate a candidate version against a baseline on a snapshot under a policy, and record it.

What ``Workspace.evaluate`` and ``regrow evaluate`` run:

1. **load**: the policy's ``gates`` section (the default policy unless one is given), both
   versions (each artifact once: a candidate shares most of its components with the baseline
   it was updated from) and the snapshot's rows. Given no baseline, the candidate is compared
   with its system's ``champion`` (:func:`default_baseline`) when that exists and is another
   version; the record says which (``baseline_ref``, ``baseline_source``);
2. **predict**: every member once on the rows (a member both versions share is predicted for
   one of them; rows an earlier command stored are read back, the rows predicted now are
   stored with the evaluation);
3. **compare**: the metric on the whole data and every slice with paired bootstrap intervals,
   then each gate the policy lists (:mod:`regrow.evaluate.gates`), all on the same resamples.
   What a gate needs beyond that is loaded only when a listed gate needs it: the reference
   and snapshot profiles (stored monitoring profiles), the held-out rows of the reference
   period (stability), artifact sizes (the store);
4. **record**: the evaluation, with every gate's result, the policy's id and the key of a
   self-contained HTML report (:mod:`regrow.evaluate.report`) written to the store.

Bad input (an unknown gate or an impossible threshold in the policy, a sensitive column the
rows lack, an unknown version) is refused before anything is recorded; the refusal is an audit
event (``evaluation.refused``). Each step is reported to ``progress``
(:mod:`regrow.progress`), and the result carries the seconds each took.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from regrow.errors import AuthError, ConfigError, DataError, NotFound, PlanError, RegrowError
from regrow.progress import ProgressFn, Timer

if TYPE_CHECKING:
    import pandas as pd

    from regrow.catalog.catalog import Catalog
    from regrow.catalog.records import EvaluationRecord, SnapshotRecord, SystemVersionRecord
    from regrow.evaluate.evaluation import Comparison
    from regrow.evaluate.gates import Gate, HeldOut
    from regrow.monitor.profile import ColumnProfile, Profile
    from regrow.plan.policy import GatePolicy, Policy
    from regrow.services import Services

__all__ = ["DEFAULT_BASELINE", "default_baseline", "evaluate", "gate_policy"]

#: The alias of the candidate's system an evaluation given no baseline compares with.
DEFAULT_BASELINE = "champion"


def gate_policy(
    policy: Policy | GatePolicy | str | os.PathLike[str] | None,
) -> tuple[GatePolicy, str, Policy | None]:
    """The ``gates`` section of ``policy`` (a Policy, the section itself, a file, or None for
    the default policy), the id an evaluation records (the whole policy's, what promotion
    rules name, or the section's when only the section was given), and the whole policy
    (None when only the section was given)."""
    from regrow.plan.policy import GatePolicy, Policy, load_policy

    if isinstance(policy, GatePolicy):
        return policy, policy.id, None
    if not isinstance(policy, Policy):
        policy = load_policy(policy)
    return policy.gates, policy.id, policy


def default_baseline(
    catalog: Catalog, candidate: SystemVersionRecord
) -> tuple[SystemVersionRecord | None, str]:
    """The version an evaluation of ``candidate`` given no baseline compares with: its
    system's :data:`DEFAULT_BASELINE` alias, unless there is none or it holds ``candidate``
    itself (then None); and a phrase saying which, for the output."""
    alias = f"{candidate.system}@{DEFAULT_BASELINE}"
    try:
        holder = catalog.get_alias(candidate.system, DEFAULT_BASELINE)
    except NotFound:
        return None, f"none ({alias} does not exist; name one with --baseline)"
    if holder.version_id == candidate.id:
        return None, f"none ({alias} is {candidate.ref} itself; name one with --baseline)"
    version = catalog.get_system_version(holder.version_id)
    return version, f"{alias} = {version.ref} (default)"


def evaluate(
    services: Services,
    candidate: str,
    snapshot: SnapshotRecord | str,
    *,
    baseline: str | None = None,
    metric: str | None = None,
    policy: Policy | GatePolicy | str | os.PathLike[str] | None = None,
    gates: Sequence[Gate] | None = None,
    progress: ProgressFn | None = None,
) -> tuple[EvaluationRecord, Comparison]:
    """Compare ``candidate`` with ``baseline`` on ``snapshot`` under ``policy``; record it.

    ``baseline`` None: the system's champion, if it exists and is not the candidate
    (:func:`default_baseline`).
    ``metric`` overrides the policy's ``gates.metric``; ``gates`` replaces its
    ``gates.checks``. Returns the record and the comparison (its ``gates`` hold each gate's
    result, its ``timings`` where the time went).
    """
    try:
        return _evaluate(services, candidate, snapshot, baseline, metric, policy, gates, progress)
    except AuthError:
        raise  # already audited where it was refused
    except RegrowError as exc:
        try:
            _audit_refusal(services, candidate, snapshot, baseline, policy, exc)
        except RegrowError as failed:  # the refusal is what the caller needs to see
            exc.add_note(f"(the refusal could not be audited: {failed})")
        raise


def _evaluate(
    services: Services,
    candidate: str,
    snapshot: SnapshotRecord | str,
    baseline: str | None,
    metric: str | None,
    policy: Policy | GatePolicy | str | os.PathLike[str] | None,
    chosen: Sequence[Gate] | None,
    progress: ProgressFn | None,
) -> tuple[EvaluationRecord, Comparison]:
    from regrow.evaluate.evaluation import judge
    from regrow.evaluate.gates import GateContext
    from regrow.evaluate.gates.context import check_frame
    from regrow.evaluate.metrics import default_metric, get_metric
    from regrow.plan.policy import Policy

    timer = Timer(progress)
    catalog = services.catalog
    with timer.step("load"):
        section, policy_id, whole = gate_policy(policy)
        if whole is not None:  # a whole policy: registered on first use
            source = "a Policy object" if isinstance(policy, Policy) else str(policy or "")
            catalog.policies.register(whole.id, whole.to_dict(), source=source[:255])
        gates = section.gates() if chosen is None else list(chosen)
        cand_v = catalog.get_system_version(candidate)
        base_v: SystemVersionRecord | None
        if baseline:
            base_v = catalog.get_system_version(baseline)
            ref = base_v.ref
            said = ref if baseline == ref else f"{baseline} = {ref}"
        else:
            base_v, said = default_baseline(catalog, cand_v)
        if base_v is not None and base_v.id == cand_v.id:
            raise ConfigError(
                f"the baseline {said} is the candidate {cand_v.ref} itself: every difference "
                "would be 0",
                hint="compare with another version (--baseline SYSTEM:vN or SYSTEM@ALIAS), or "
                "leave --baseline out for the champion",
            )
        snap = services.record(snapshot)
        frame = services.frame(snap.id)
        cand = services.load(cand_v)
        base = services.load(base_v) if base_v else None
        if cand.adapters:
            # Both read the rows as the candidate reads them: through its boundary adapters
            # (a baseline without them could not read a renamed column). The evaluation is
            # of the adapted rows, so it is recorded on their snapshot: rows the candidate
            # trained on, once adapted, do not count as held out.
            from regrow.windows import adapted_snapshot

            snap, frame = adapted_snapshot(services, cand.adapters, snap)
        check_frame(cand, base, frame)
        snapshot_rows = len(frame)
        notes: list[str] = []
        slices = dict(snap.slices) or _training_slices(services, (cand_v, base_v), frame, notes)
        frame = _evaluable(services, frame, snap.name, [(cand_v, cand), (base_v, base)])
    outputs = services.outputs

    def predict(model: Any, rows: pd.DataFrame) -> Any:
        import numpy as np

        if rows is frame and len(rows) == snapshot_rows:  # outputs stored for the snapshot's rows
            members = outputs.member_outputs(model, rows, snapshot=snap.id)
        else:
            members = model.member_outputs(rows)
        return np.asarray(model.output_of(members, rows), dtype=float)

    with timer.step("predict", total=1 + (base is not None)) as step:
        scores = []
        for model in (cand, base):
            if model is not None:
                scores.append(predict(model, frame))
                step.advance()
    with timer.step("compare"):
        needs = set().union(*(getattr(g, "needs", frozenset()) for g in gates))
        profiles = _profiles(services, cand_v, base_v, snap) if "profiles" in needs else {}
        context = GateContext(
            candidate=cand, baseline=base, frame=frame,
            metric=get_metric(metric or section.metric or default_metric(cand.task), cand.task),
            candidate_scores=scores[0], baseline_scores=scores[1] if base is not None else None,
            slices=slices, level=section.level, n_boot=section.resamples,
            seed=section.seed, candidate_version=cand_v, baseline_version=base_v,
            reference_rows=lambda name: _held_out(services, cand_v, base_v, name),
            store=services.store, predict=predict, **profiles,
        )  # fmt: skip
        result = judge(context, gates, inconclusive=section.inconclusive)
        if len(frame) < snapshot_rows:
            notes.append(
                f"{snapshot_rows - len(frame):,} of {snapshot_rows:,} rows are left out (no "
                f"label, or a version cannot score them): the comparison is on {len(frame):,}"
            )
        trained = sorted(_fitted_on(services, cand_v, snap.id))
        if trained:
            notes.append(
                f"{cand_v.ref}'s {', '.join(trained)} trained on snapshot {snap.name!r}: its "
                "score here is in-sample, and a promotion does not count this evaluation"
            )
        result = replace(result, notes=tuple(notes))
    with timer.step("record"):
        from regrow.evaluate.report import render

        html = render(
            result, candidate=cand_v.ref, baseline=base_v.ref if base_v else None,
            snapshot=snap.name, policy=policy_id,
        )  # fmt: skip
        report = services.store.put(html.encode("utf-8"))
        record = catalog.add_evaluation(
            candidate_id=cand_v.id,
            baseline_id=base_v.id if base_v else None,
            snapshot_id=snap.id,
            metric=result.metric,
            results={
                **result.as_dict(),
                "baseline_ref": base_v.ref if base_v else None,
                "baseline_source": said,
                "policy": policy_id,
                "gate_policy": section.to_dict(),
                "gate_source": "policy" if chosen is None else "caller",
                "gate_settings": [_settings(g) for g in gates],
                "report": report,
                "timings": {k: round(v, 4) for k, v in timer.seconds.items()},
            },
            verdict=result.verdict,
            reasons=list(result.reasons),
        )
        outputs.save()
        from regrow.experiments import record_evaluation

        record_evaluation(catalog, record)  # an experiment that made the candidate: its actual
    return record, replace(result, timings=dict(timer.seconds))


def _fitted_on(services: Services, version: SystemVersionRecord, snapshot_id: str) -> set[str]:
    """The components of ``version`` fitted on snapshot ``snapshot_id``."""
    records = services.catalog.get_component_versions(list(version.manifest.values()))
    return {n for n, vid in version.manifest.items() if records[vid].snapshot_id == snapshot_id}


def _evaluable(
    services: Services,
    frame: pd.DataFrame,
    name: str,
    versions: Sequence[tuple[SystemVersionRecord | None, Any]],
) -> pd.DataFrame:
    """The rows of evaluation snapshot ``name`` that every version of ``versions`` can score
    and that carry a label: checked as ``regrow plan`` checks a window (a column a version
    reads that is missing or holds no value of its type is refused; a few rows it cannot
    score are left out), with labels the versions cannot read refused and rows without a
    label left out. Null labels were scored as class 0, and a stray string was a traceback."""
    from regrow.monitoring import unreadable_labels, window_quality
    from regrow.plan.policy import Planning
    from regrow.plan.screen import screen

    models = [(v, m) for v, m in versions if v is not None and m is not None]
    target = models[0][1].target
    keep = frame.index
    usable: pd.DataFrame | None = None
    most = Planning().max_unusable_share  # of rows left out: a plan's default (no policy's)
    for version, model in models:
        check = window_quality(services, version, frame, model)
        try:  # a column the version reads that is missing, or holds no value it can read
            screen(check, Planning(max_unusable_share=1.0), target=target)
        except PlanError as exc:
            raise DataError(
                f"cannot evaluate {version.ref} on snapshot {name!r}: "
                + exc.message.removeprefix("cannot plan on this window: ").replace(
                    "the window", "the snapshot"
                ),
                hint="evaluate on a snapshot that holds the column with its values (a column "
                "renamed upstream: bridge it with an adapter, `regrow adapters propose`)",
            ) from None
        left_out = check.rows - check.usable_rows
        if left_out > most * check.rows:
            what = "; ".join(
                f.described
                + (f"; member {', '.join(map(repr, f.blocked))} cannot take them" if f.blocked
                   else "")
                for f in check.findings
                if f.unusable
            )  # fmt: skip
            raise DataError(
                f"cannot evaluate {version.ref} on snapshot {name!r}: {version.ref} cannot "
                f"score {left_out:,} of the snapshot's {check.rows:,} rows "
                f"({left_out / check.rows:.1%}; an evaluation leaves out at most {most:.0%}): "
                f"{what}",
                hint="fill or drop those rows, store the result as a snapshot and evaluate on "
                "it, or give the member an imputer or an encoder that takes unknown values "
                "(e.g. OneHotEncoder(handle_unknown='ignore')) and retrain",
            )
        unread = unreadable_labels(check, model, version.ref)
        if unread is not None:
            count, what = unread
            raise DataError(
                f"{count:,} label(s) in {target!r} of snapshot {name!r} are not {what}",
                hint="map the labels to the classes the versions were trained on, or drop "
                "those rows, and evaluate again",
            )
        keep = keep.intersection(check.usable.index)
        usable = check.usable if usable is None else usable
    assert usable is not None
    rows: pd.DataFrame = usable.loc[keep]
    rows = rows[rows[target].notna()].reset_index(drop=True)
    if rows.empty:
        raise DataError(
            f"snapshot {name!r} has no labelled row the versions can score",
            hint="evaluate on a labelled snapshot",
        )
    return rows


def _settings(gate: Gate) -> dict[str, Any]:
    settings = getattr(gate, "settings", None)
    return {"name": gate.name, **(settings() if callable(settings) else {})}


def _audit_refusal(
    services: Services,
    candidate: str,
    snapshot: SnapshotRecord | str,
    baseline: str | None,
    policy: Any,
    exc: RegrowError,
) -> None:
    snap = (
        snapshot if isinstance(snapshot, str) else getattr(snapshot, "id", type(snapshot).__name__)
    )
    where = policy if isinstance(policy, str | os.PathLike) else None
    payload: dict[str, Any] = {
        "snapshot": snap,
        "baseline": baseline,
        "policy": os.fspath(where) if where is not None else None,
        "refused": str(exc),
        "error": type(exc).__name__,
    }
    try:
        subject = f"version:{services.catalog.get_system_version(candidate).ref}"
    except RegrowError:
        subject = f"version:{candidate}"
    services.catalog.audit("evaluation.refused", subject, payload)


def _profiles(
    services: Services,
    cand_v: SystemVersionRecord,
    base_v: SystemVersionRecord | None,
    snap: SnapshotRecord,
) -> dict[str, Any]:
    """The profile fields of the gate context (see :class:`~regrow.evaluate.gates.GateContext`)."""
    from regrow.monitoring import monitor_profile

    catalog = services.catalog
    memo: dict[str, Profile] = {}

    def profile(snapshot_id: str) -> Profile:
        if snapshot_id not in memo:
            memo[snapshot_id] = monitor_profile(services, catalog.get_snapshot(snapshot_id))
        return memo[snapshot_id]

    cand_snaps = _member_snapshots(services, cand_v)
    training: dict[str, Profile] = {}
    for snapshot_id in dict.fromkeys(s for s, _ in cand_snaps.values() if s is not None):
        record = catalog.get_snapshot(snapshot_id)
        label = record.name if record.name not in training else f"{record.name}@{record.id[:12]}"
        training[label] = profile(snapshot_id)
    return {
        "candidate_reference": _reference(cand_v, cand_snaps, profile),
        "baseline_reference": (
            _reference(base_v, _member_snapshots(services, base_v), profile) if base_v else {}
        ),
        "training": training,
        "evaluation_profile": profile(snap.id),
    }


def _member_snapshots(
    services: Services, version: SystemVersionRecord
) -> dict[str, tuple[str | None, set[str]]]:
    """Each member: the snapshot its component version was trained on, and its raw columns."""
    from regrow.evaluate.gates.coverage import member_columns

    records = services.catalog.get_component_versions(list(version.manifest.values()))
    columns = member_columns(version.spec)
    return {
        member: (records[version.manifest[member]].snapshot_id, cols)
        for member, cols in columns.items()
        if member in version.manifest
    }


def _reference(
    version: SystemVersionRecord,
    members: Mapping[str, tuple[str | None, set[str]]],
    profile: Any,
) -> dict[str, ColumnProfile]:
    """Each column the members read, profiled in the snapshot it was trained on (the
    version's own snapshot first, as monitoring does)."""
    ordered = sorted(members.values(), key=lambda m: m[0] != version.snapshot_id)
    out: dict[str, ColumnProfile] = {}
    for snapshot_id, columns in ordered:
        if snapshot_id is None:
            continue
        prof = profile(snapshot_id)
        for column in sorted(columns):
            if column in prof.columns:
                out.setdefault(column, prof.columns[column])
    return out


def _held_out(
    services: Services,
    cand_v: SystemVersionRecord,
    base_v: SystemVersionRecord | None,
    name: str | None,
) -> HeldOut | None:
    """Rows of the reference period for the stability gate (see
    :class:`~regrow.evaluate.gates.Stability`)."""
    from regrow.evaluate.gates import HeldOut

    catalog = services.catalog
    cand_members = _member_snapshots(services, cand_v)
    base_members = _member_snapshots(services, base_v) if base_v else {}
    if name is not None:
        snap = catalog.get_snapshot(name)
        frame = services.frame(snap.id)
        if cand_v.spec["target"] not in frame.columns:
            raise DataError(
                f"snapshot {name!r} (gates.checks.stability.snapshot) has no target column "
                f"{cand_v.spec['target']!r}",
                hint="name a labelled snapshot of the reference period",
            )
        trained = _trained_on(snap.id, cand_v, cand_members, base_v, base_members)
        return HeldOut(frame, f"snapshot {snap.name!r} named by the policy", trained)
    if base_v is None or base_v.snapshot_id is None:
        return None
    reference = catalog.get_snapshot(base_v.snapshot_id)
    frame = services.frame(reference.id)
    others = {s for s, _ in cand_members.values() if s is not None and s != reference.id}
    seen = _row_hashes(services, others, frame.columns)
    if seen is not None:
        import pandas as pd

        keep = ~pd.util.hash_pandas_object(frame, index=False).isin(seen).to_numpy()
        frame = frame[keep]
    trained = _trained_on(reference.id, cand_v, cand_members, base_v, base_members)
    source = (
        f"{base_v.ref}'s training snapshot {reference.name!r} that {cand_v.ref}'s new "
        "members did not train on"
    )
    return HeldOut(frame, source, trained)


def _trained_on(
    snapshot_id: str,
    cand_v: SystemVersionRecord,
    cand_members: Mapping[str, tuple[str | None, set[str]]],
    base_v: SystemVersionRecord | None,
    base_members: Mapping[str, tuple[str | None, set[str]]],
) -> tuple[str, ...]:
    """Who trained on snapshot ``snapshot_id``: the baseline, and the candidate's members."""
    out = []
    if base_v is not None and any(s == snapshot_id for s, _ in base_members.values()):
        out.append(f"{base_v.ref} (members {_on(snapshot_id, base_members)})")
    if any(s == snapshot_id for s, _ in cand_members.values()):
        out.append(f"{cand_v.ref} (members {_on(snapshot_id, cand_members)})")
    return tuple(out)


def _on(snapshot_id: str, members: Mapping[str, tuple[str | None, set[str]]]) -> str:
    return ", ".join(sorted(m for m, (s, _) in members.items() if s == snapshot_id))


def _row_hashes(services: Services, snapshots: Iterable[str], columns: Any) -> Any:
    """Hashes of the rows of ``snapshots`` on ``columns`` (None when there are none)."""
    import pandas as pd

    hashes = []
    for snapshot_id in sorted(snapshots):
        record = services.catalog.get_snapshot(snapshot_id)
        if set(columns) - set(record.columns):
            continue  # other columns: its rows cannot be the reference's
        rows = services.frame(snapshot_id)[list(columns)]
        hashes.append(pd.util.hash_pandas_object(rows, index=False))
    return pd.concat(hashes) if hashes else None


def _training_slices(
    services: Services,
    versions: tuple[SystemVersionRecord, SystemVersionRecord | None],
    frame: pd.DataFrame,
    notes: list[str],
) -> dict[str, str]:
    """For an evaluation snapshot that defines no slices: those of the snapshot the candidate
    was trained on, else the baseline's (a candidate updated on a window has its window's),
    that apply to ``frame``, as a monitored window takes them; with a note, and a note for
    each that does not apply."""
    from regrow.windows import applicable_slices

    for version in versions:
        if version is None or not version.snapshot_id or frame.empty:
            continue
        trained = services.record(version.snapshot_id).slices
        if not trained:
            continue
        taken = applicable_slices(trained, frame, notes, "the evaluation snapshot")
        if taken:
            said = "slice {} comes" if len(taken) == 1 else "slices {} come"
            notes.insert(
                0,
                said.format(", ".join(taken)) + f" from the snapshot {version.ref} was trained "
                "on (the evaluation snapshot defines none)",
            )
        return taken
    return {}
