"""The hash-chained audit log: appending, reading, verifying, detecting tampering."""

from __future__ import annotations

import getpass
import threading
from datetime import UTC
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from regrow._hashing import canonical_json, sha256_hex
from regrow.catalog import Catalog
from regrow.catalog.audit import GENESIS_HASH
from regrow.catalog.models import AuditEvent, AuditHead
from regrow.errors import AuditChainBroken, ConfigError


def fill(catalog: Catalog, n: int) -> None:
    for i in range(n):
        catalog.audit("approval.grant", f"version:churn:v{i}", {"i": i, "note": "ok"})


def test_events_chain_from_the_genesis_hash(catalog: Catalog) -> None:
    first = catalog.audit("approval.grant", "version:churn:v2", {"by": "ana"}, actor="ana")
    second = catalog.audit("approval.revoke", "version:churn:v2", {"by": "bo"})
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert first.at.tzinfo is UTC
    content = {
        "seq": 1,
        "at": first.at.isoformat(),
        "actor": "ana",
        "action": "approval.grant",
        "subject": "version:churn:v2",
        "payload": {"by": "ana"},
    }
    assert first.hash == sha256_hex((GENESIS_HASH + canonical_json(content)).encode())
    assert catalog.audit_events() == [second, first]


def test_audit_events_filter_and_limit(catalog: Catalog) -> None:
    fill(catalog, 5)
    assert [e.seq for e in catalog.audit_events(limit=2)] == [5, 4]
    [event] = catalog.audit_events(subject="version:churn:v3")
    assert event.payload == {"i": 3, "note": "ok"}


def test_actor_defaults_to_the_environment_then_the_login(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert catalog.audit("x.y", "s", {}).actor == "tester"
    monkeypatch.delenv("REGROW_ACTOR")
    assert catalog.audit("x.y", "s", {}).actor == getpass.getuser()


def test_bad_audit_arguments_are_refused(catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match="'action' must be a non-empty string"):
        catalog.audit("", "s", {})
    with pytest.raises(ConfigError, match="'payload' must be a mapping"):
        catalog.audit("a.b", "s", [1, 2])  # type: ignore[arg-type]
    assert catalog.audit_events() == []


def test_verify_counts_the_events(catalog: Catalog) -> None:
    assert catalog.verify_audit() == 0
    fill(catalog, 7)
    assert catalog.verify_audit() == 7


def test_an_edited_payload_is_detected(catalog: Catalog, raw: Engine) -> None:
    fill(catalog, 5)
    with raw.begin() as conn:
        conn.execute(
            sa.update(AuditEvent).where(AuditEvent.seq == 3).values(payload={"i": 3, "note": "no"})
        )
    with pytest.raises(AuditChainBroken, match="audit event seq 3 was altered") as info:
        catalog.verify_audit()
    assert "restore the catalog from a backup" in str(info.value)


def test_an_edited_actor_is_detected(catalog: Catalog, raw: Engine) -> None:
    fill(catalog, 3)
    with raw.begin() as conn:
        conn.execute(sa.update(AuditEvent).where(AuditEvent.seq == 1).values(actor="mallory"))
    with pytest.raises(AuditChainBroken, match="seq 1 was altered"):
        catalog.verify_audit()


def test_a_rehashed_edit_breaks_the_next_link(catalog: Catalog, raw: Engine) -> None:
    fill(catalog, 4)
    with raw.begin() as conn:
        conn.execute(sa.update(AuditEvent).where(AuditEvent.seq == 2).values(hash="f" * 64))
    with pytest.raises(AuditChainBroken, match="seq 2 was altered"):
        catalog.verify_audit()
    with raw.begin() as conn:  # forge event 2 completely: then event 3 no longer follows it
        row = conn.execute(sa.select(AuditEvent).where(AuditEvent.seq == 2)).one()
        content = {
            "seq": 2,
            "at": row.at.isoformat(),
            "actor": row.actor,
            "action": row.action,
            "subject": row.subject,
            "payload": {"forged": True},
        }
        forged = sha256_hex((row.prev_hash + canonical_json(content)).encode())
        conn.execute(
            sa.update(AuditEvent)
            .where(AuditEvent.seq == 2)
            .values(payload={"forged": True}, hash=forged)
        )
    with pytest.raises(AuditChainBroken, match="seq 3 does not follow"):
        catalog.verify_audit()


@pytest.mark.parametrize(("deleted", "reported"), [(1, 1), (3, 3), (5, 5)])
def test_a_deleted_event_is_detected(
    catalog: Catalog, raw: Engine, deleted: int, reported: int
) -> None:
    fill(catalog, 5)
    with raw.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.seq == deleted))
    with pytest.raises(AuditChainBroken, match=f"seq {reported} is missing"):
        catalog.verify_audit()


def test_a_rewound_head_is_detected(catalog: Catalog, raw: Engine) -> None:
    fill(catalog, 3)
    with raw.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.seq == 3))
        row = conn.execute(sa.select(AuditEvent.hash).where(AuditEvent.seq == 2)).one()
        conn.execute(sa.update(AuditHead).values(seq=2, hash=row.hash))
    assert catalog.verify_audit() == 2  # a consistent prefix: truncation needs a backup to see
    with raw.begin() as conn:
        conn.execute(sa.update(AuditHead).values(hash="0" * 64))
    with pytest.raises(AuditChainBroken, match="seq 2 was altered"):
        catalog.verify_audit()


def test_concurrent_writers_never_fork_the_chain(catalog: Catalog, build: Any) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            for j in range(5):
                catalog.audit("load.test", f"worker:{i}", {"j": j})
        except BaseException as exc:  # collected and checked below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert catalog.verify_audit() == 20
    assert sorted(e.seq for e in catalog.audit_events(limit=100)) == list(range(1, 21))


def test_writes_of_every_kind_are_audited_in_one_chain(catalog: Catalog, build: Any) -> None:
    snapshot = build.snapshot("sales")
    v1 = build.version("churn", snapshot_id=snapshot.id)
    run = catalog.start_run(system="churn", kind="update", seed=1, environment={}, params={})
    catalog.finish_run(run.id, status="succeeded", summary={}, version_id=v1.id)
    catalog.add_evaluation(
        candidate_id=v1.id,
        baseline_id=None,
        snapshot_id=snapshot.id,
        metric="auc",
        results={"auc": 0.9},
        verdict="none",
        reasons=[],
    )
    catalog.move_alias("churn", "champion", v1.id)
    actions = [e.action for e in reversed(catalog.audit_events())]
    assert actions == [
        "schema.create",
        "snapshot.create",
        "component.create",
        "component.create",
        "version.create",
        "run.start",
        "run.finish",
        "evaluation.create",
        "alias.move",
    ]
    assert catalog.verify_audit() == 9
