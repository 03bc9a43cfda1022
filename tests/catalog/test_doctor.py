"""What `regrow doctor` checks in the catalog and the store, on SQLite and PostgreSQL.

Rebuilding fitted components end to end is in ``tests/test_rebuild.py``; here the rows are
made directly, with artifacts of plain bytes in an in-memory store.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from regrow._hashing import hash_json, sha256_hex
from regrow.catalog import Catalog
from regrow.catalog.health import examine, lost_artifacts, restore_snapshot_artifact
from regrow.catalog.integrity import ARTIFACT_BYTES
from regrow.catalog.store import FsspecStore
from regrow.doctor import doctor, parse_duration
from regrow.errors import ConfigError

LATER = datetime.now(UTC) + timedelta(hours=2)  # "now" for checks that should see old files


@pytest.fixture
def store() -> Iterator[FsspecStore]:
    made = FsspecStore(f"memory:///regrow-doctor-{uuid.uuid4().hex}")
    yield made
    root = made.url.removeprefix("memory://")
    if made.fs.exists(root):
        made.fs.rm(root, recursive=True)


def component(
    catalog: Catalog, store: FsspecStore, name: str, data: bytes, *, size: bool = True
) -> Any:
    key = store.put(data)
    return catalog.add_component_version(
        system="churn",
        component=name,
        kind="member",
        fingerprint=hash_json([name, data.hex()]),
        parts={"recipe": name},
        artifact=key,
        run_id=None,
        snapshot_id=None,
        seed=1,
        train_seconds=0.1,
        info={ARTIFACT_BYTES: len(data)} if size else {},
    )


def path(store: FsspecStore, key: str) -> str:
    return f"{store.url.removeprefix('memory://')}/{key[:2]}/{key}"


def flip(store: FsspecStore, key: str) -> None:
    data = bytearray(store.fs.cat_file(path(store, key)))
    data[0] ^= 0x01
    store.fs.pipe_file(path(store, key), bytes(data))


def test_a_healthy_catalog_and_store_have_no_problems(
    catalog: Catalog, store: FsspecStore, build: Any
) -> None:
    component(catalog, store, "a", b"model a")
    build.snapshot(artifact=store.put(b"parquet"))
    report = examine(catalog, store, now=LATER)
    assert report.ok
    assert report.problems == ()
    assert report.checked["artifacts"] == 2
    assert report.checked["hashed"] == 2
    assert report.checked["audit_events"] == 3  # schema, snapshot and component created


def test_missing_and_corrupted_artifacts_are_found_for_every_row(
    catalog: Catalog, store: FsspecStore, build: Any
) -> None:
    gone = component(catalog, store, "gone", b"model gone")
    flipped = component(catalog, store, "flipped", b"model flipped")
    fine = component(catalog, store, "fine", b"model fine")
    snap = build.snapshot(artifact=store.put(b"rows"))
    store.delete(gone.artifact)
    flip(store, flipped.artifact)
    store.delete(snap.artifact)
    report = examine(catalog, store, now=LATER)
    found = {p.subject: p for p in report.problems}
    assert set(found) == {
        f"component-version:{gone.id}",
        f"component-version:{flipped.id}",
        f"snapshot:{snap.id}",
    }
    assert found[f"component-version:{gone.id}"].kind == "missing"
    corrupt = found[f"component-version:{flipped.id}"]
    assert corrupt.kind == "corrupt"
    assert corrupt.key == flipped.artifact
    assert "hash to" in corrupt.message
    assert "doctor --repair" in corrupt.hint
    assert corrupt.repairable
    missing_snapshot = found[f"snapshot:{snap.id}"]
    assert not missing_snapshot.repairable
    assert "regrow snapshot create FILE --name sales" in missing_snapshot.hint
    assert not report.ok
    assert f"component-version:{fine.id}" not in found


def test_quick_checks_existence_and_recorded_size_without_reading(
    catalog: Catalog, store: FsspecStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = component(catalog, store, "gone", b"model gone")
    cut = component(catalog, store, "cut", b"model cut")
    flipped = component(catalog, store, "flipped", b"model flipped")
    store.delete(gone.artifact)
    store.fs.pipe_file(path(store, cut.artifact), b"model")
    flip(store, flipped.artifact)

    def no_reads(*args: Any) -> Any:
        raise AssertionError("--quick read an artifact")

    monkeypatch.setattr(store, "_open", no_reads)
    report = examine(catalog, store, quick=True, now=LATER)
    kinds = {p.subject.split(":")[1]: p.kind for p in report.problems}
    assert kinds == {gone.id: "missing", cut.id: "corrupt"}  # a same-size flip needs a hash
    assert report.checked["hashed"] == 0


def test_the_runners_check_finds_missing_and_resized_artifacts_in_one_call(
    catalog: Catalog, store: FsspecStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = component(catalog, store, "gone", b"model gone")
    cut = component(catalog, store, "cut", b"model cut")
    old = component(catalog, store, "old", b"model old", size=False)  # recorded no size
    fine = component(catalog, store, "fine", b"model fine")
    store.delete(gone.artifact)
    store.fs.pipe_file(path(store, cut.artifact), b"model")
    store.fs.pipe_file(path(store, old.artifact), b"model")
    calls = []
    sizes = store.sizes
    monkeypatch.setattr(store, "sizes", lambda keys: calls.append(1) or sizes(keys))
    lost = lost_artifacts(store, [gone, cut, old, fine])
    assert lost == {gone.id: "missing", cut.id: "corrupted"}
    assert len(calls) == 1


def test_orphan_files_are_reported_after_the_grace_period_and_deleted_by_repair(
    catalog: Catalog, store: FsspecStore
) -> None:
    kept = component(catalog, store, "kept", b"model kept")
    orphan = store.put(b"left behind by a crash")
    temp, handle = store._open_temp()
    with handle:
        handle.write(b"half a write")
    assert examine(catalog, store).ok  # young files may be about to be recorded
    assert examine(catalog, store).checked["recent_unreferenced_files"] == 2
    report = doctor(catalog, store, now=LATER)
    assert {p.subject for p in report.problems} == {
        f"artifact:{orphan}",
        f"file:tmp/{temp.rsplit('/', 1)[1]}",
    }
    assert all(p.kind == "orphan" and p.repairable for p in report.problems)
    repaired = doctor(catalog, store, repair=True, now=LATER)
    assert repaired.ok
    assert {r.action for r in repaired.repairs} == {"deleted"}
    assert not store.exists(orphan)
    assert [f.key for f in store.list_files()] == [kept.artifact]  # the temporary file is gone
    deletions = [e for e in catalog.audit_events() if e.action == "store.delete"]
    assert {e.subject for e in deletions} == {p.subject for p in report.problems}
    assert doctor(catalog, store, now=LATER).ok


def test_grace_zero_reports_every_unreferenced_file(catalog: Catalog, store: FsspecStore) -> None:
    orphan = store.put(b"just written")
    report = doctor(catalog, store, grace="0s", now=datetime.now(UTC) + timedelta(seconds=1))
    assert [p.key for p in report.problems] == [orphan]


def test_stuck_runs_are_reported_and_repair_marks_them_abandoned(
    catalog: Catalog, store: FsspecStore
) -> None:
    run = catalog.start_run(system="churn", kind="train", seed=0, environment={}, params={})
    assert doctor(catalog, store).ok  # running, but not for long
    later = datetime.now(UTC) + timedelta(hours=13)
    report = doctor(catalog, store, now=later)
    [problem] = report.problems
    assert (problem.kind, problem.subject) == ("stuck-run", f"run:{run.id}")
    assert "running since" in problem.message
    assert doctor(catalog, store, stuck_after="14h", now=later).ok
    repaired = doctor(catalog, store, repair=True, now=later)
    assert repaired.ok
    assert repaired.repairs[0].action == "abandoned"
    after = catalog.get_run(run.id)
    assert after.status == "abandoned"
    assert "process is gone" in (after.error or "")
    finish = catalog.audit_events(subject=f"run:{run.id}")[0]
    assert finish.action == "run.abandon"
    assert doctor(catalog, store, now=later).ok


def test_a_run_whose_lease_lapsed_is_abandoned_with_where_it_ran(
    catalog: Catalog, store: FsspecStore
) -> None:
    run = catalog.start_run(system="churn", kind="train", seed=0, environment={}, params={})
    holder = {"host": "node-7", "pid": 4242, "user": "ana"}
    catalog.leases.hold_run(run.id, lease_seconds=30, holder=holder)
    assert doctor(catalog, store).ok  # its lease is live
    later = datetime.now(UTC) + timedelta(seconds=31)  # long before --stuck-after (12 h)
    [problem] = doctor(catalog, store, now=later).problems
    assert problem.kind == "stuck-run"
    assert "abandoned" in problem.message
    assert "node-7 (pid 4242, user ana)" in problem.message
    repaired = doctor(catalog, store, repair=True, now=later)
    assert repaired.repairs[0].action == "abandoned"
    assert catalog.get_run(run.id).status == "abandoned"
    assert doctor(catalog, store, now=later).ok


def test_a_broken_audit_chain_is_reported(
    catalog: Catalog, store: FsspecStore, raw: Engine
) -> None:
    catalog.audit("approval.grant", "version:churn:v1", {"by": "ana"})
    catalog.audit("approval.grant", "version:churn:v2", {"by": "bo"})
    with raw.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1"))
    [problem] = doctor(catalog, store).problems
    assert problem.kind == "audit-chain"
    assert "seq 1" in problem.message
    assert not problem.repairable


def test_alias_history_that_disagrees_with_its_audit_events_is_reported(
    catalog: Catalog, store: FsspecStore, build: Any, raw: Engine
) -> None:
    v1, v2 = build.version(), build.version()
    catalog.move_alias("churn", "champion", v1.id)
    catalog.move_alias("churn", "champion", v2.id)
    catalog.move_alias("churn", "challenger", v2.id)
    assert doctor(catalog, store).ok
    with raw.begin() as conn:  # pointed back by hand, bypassing the history and the audit log
        conn.execute(
            sa.text("UPDATE aliases SET version_id = :v WHERE name = 'champion'"), {"v": v1.id}
        )
        conn.execute(sa.text("DELETE FROM alias_moves WHERE alias = 'challenger'"))
    problems = doctor(catalog, store).problems
    # the audit chain covers both tables: it is broken too
    assert {p.kind for p in problems} == {"alias-history", "audit-chain"}
    messages = {
        p.subject: [q.message for q in problems if q.subject == p.subject] for p in problems
    }
    champion = " ".join(messages["alias:churn@champion"])
    assert f"points at {v1.id} but its last recorded move went to {v2.id}" in champion
    challenger = " ".join(messages["alias:churn@challenger"])
    assert "is at revision 1 but has 0 recorded moves" in challenger
    assert "has no recorded move" in challenger


def test_a_catalog_behind_the_newest_migration_is_reported(
    catalog: Catalog, store: FsspecStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regrow.catalog import integrity

    monkeypatch.setattr(integrity.db, "current_revision", lambda engine: "0001")
    [problem] = doctor(catalog, store).problems
    assert problem.kind == "migration"
    assert "'0001'" in problem.message


def test_a_rebuild_moves_the_artifact_pointer_by_compare_and_set(
    catalog: Catalog, store: FsspecStore
) -> None:
    lost = component(catalog, store, "m", b"old bytes")
    new = store.put(b"new bytes")
    kwargs: dict[str, Any] = {"size": 9, "reason": "missing", "by": "doctor"}
    moved = catalog.integrity.record_rebuild(
        lost.id, expected=lost.artifact, artifact=new, **kwargs
    )
    assert (moved.id, moved.fingerprint, moved.artifact) == (lost.id, lost.fingerprint, new)
    [event] = [
        e
        for e in catalog.audit_events(subject=f"component-version:{lost.id}")
        if e.action == "component.rebuild"
    ]
    assert event.payload["from"] == lost.artifact
    assert event.payload["to"] == new
    assert event.payload["identical"] is False
    # A second rebuild from the stale pointer finds the row repaired and writes nothing.
    again = catalog.integrity.record_rebuild(
        lost.id, expected=lost.artifact, artifact=store.put(b"other"), **kwargs
    )
    assert again.artifact == new
    assert len(catalog.audit_events(subject=f"component-version:{lost.id}")) == 2  # create, rebuild
    assert catalog.integrity.referenced(new)
    assert not catalog.integrity.referenced(lost.artifact)
    catalog.verify_audit()


def test_storing_the_same_rows_again_restores_a_lost_snapshot_artifact(
    catalog: Catalog, store: FsspecStore, build: Any
) -> None:
    snap = build.snapshot(artifact=store.put(b"the rows"))
    assert restore_snapshot_artifact(catalog, store, snap, b"the rows") == snap  # intact: no-op
    assert catalog.audit_events(subject=f"snapshot:{snap.id}")[0].action == "snapshot.create"
    flip(store, snap.artifact)
    restored = restore_snapshot_artifact(catalog, store, snap, b"the rows")
    assert restored.artifact == snap.artifact
    assert store.get(snap.artifact) == b"the rows"
    store.delete(snap.artifact)
    moved = restore_snapshot_artifact(catalog, store, snap, b"the rows, written differently")
    assert moved.artifact == sha256_hex(b"the rows, written differently")
    events = catalog.audit_events(subject=f"snapshot:{snap.id}")
    assert [e.payload["reason"] for e in events if e.action == "snapshot.restore"] == [
        "missing",
        "corrupted",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("1.5h", 5400), ("2d", 172800)]
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1w", "h", "-1h", "1 hour"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="duration"):
        parse_duration(text)
