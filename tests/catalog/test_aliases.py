"""Aliases: compare-and-set moves, races, rollback, history."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from regrow.catalog import AliasRecord, Catalog
from regrow.errors import AliasConflict, CatalogError, ConfigError, NotFound, VersionNotFound


def race(
    n: int, work: Callable[[int], AliasRecord]
) -> tuple[list[AliasRecord], list[BaseException]]:
    """Run ``work(i)`` in ``n`` threads released at the same moment."""
    barrier = threading.Barrier(n)
    won: list[AliasRecord] = []
    lost: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            won.append(work(i))
        except BaseException as exc:  # collected and checked by the caller
            lost.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won, lost


def test_first_move_creates_the_alias(catalog: Catalog, build: Any) -> None:
    version = build.version("churn")
    before = datetime.now(UTC)
    moved = catalog.move_alias("churn", "champion", version.id, expected_revision=0)
    assert (moved.version_id, moved.revision) == (version.id, 1)
    assert moved.updated_at >= before
    assert catalog.get_alias("churn", "champion") == moved
    assert catalog.get_system_version("churn@champion") == version


def test_moves_bump_the_revision_and_keep_history(catalog: Catalog, build: Any) -> None:
    v1, v2, v3 = (build.version("churn") for _ in range(3))
    catalog.move_alias("churn", "champion", v1.id, actor="ana", reason="first")
    catalog.move_alias("churn", "champion", v2.id, expected_revision=1, actor="bo", reason="better")
    last = catalog.move_alias("churn", "champion", v3.id, actor="cy", reason="even better")
    assert last.revision == 3
    history = catalog.alias_history("churn", "champion")
    assert [(m.from_version_id, m.to_version_id, m.revision) for m in history] == [
        (v2.id, v3.id, 3),
        (v1.id, v2.id, 2),
        (None, v1.id, 1),
    ]
    assert [(m.actor, m.reason) for m in history] == [
        ("cy", "even better"),
        ("bo", "better"),
        ("ana", "first"),
    ]
    assert history[0].at >= history[1].at >= history[2].at
    assert all(m.at.tzinfo is UTC for m in history)


def test_moves_are_audited(catalog: Catalog, build: Any) -> None:
    v1, v2 = build.version("churn"), build.version("churn")
    catalog.move_alias("churn", "champion", v1.id)
    catalog.move_alias("churn", "champion", v2.id, actor="ana", reason="wins on AUC")
    events = catalog.audit_events(subject="alias:churn@champion")
    assert [e.action for e in events] == ["alias.move", "alias.move"]
    assert events[0].actor == "ana"
    assert {k: v for k, v in events[0].payload.items() if k != "covers"} == {
        "from": v1.id,
        "from_ref": "churn:v1",
        "to": v2.id,
        "to_ref": "churn:v2",
        "revision": 2,
        "reason": "wins on AUC",
    }


def test_a_stale_expected_revision_conflicts(catalog: Catalog, build: Any) -> None:
    v1, v2 = build.version("churn"), build.version("churn")
    catalog.move_alias("churn", "champion", v1.id)
    catalog.move_alias("churn", "champion", v2.id)
    with pytest.raises(AliasConflict) as info:
        catalog.move_alias("churn", "champion", v1.id, expected_revision=1)
    message = str(info.value)
    assert "churn@champion is at revision 2, not the expected revision 1: someone else" in message
    assert "`regrow aliases churn`" in message  # a command a CLI user has
    assert isinstance(info.value, RuntimeError)
    assert catalog.get_alias("churn", "champion").version_id == v2.id
    assert len(catalog.alias_history("churn", "champion")) == 2
    with pytest.raises(AliasConflict) as info:  # an alias not made yet: nobody moved it
        catalog.move_alias("churn", "beta", v1.id, expected_revision=1)
    assert str(info.value.message) == (
        "alias churn@beta does not exist yet (revision 0), not the expected revision 1"
    )


def test_expecting_an_existing_alias_that_is_missing_conflicts(
    catalog: Catalog, build: Any
) -> None:
    version = build.version("churn")
    with pytest.raises(
        AliasConflict, match=r"does not exist yet \(revision 0\), not the expected revision 3"
    ):
        catalog.move_alias("churn", "champion", version.id, expected_revision=3)
    assert catalog.list_aliases() == []


def test_concurrent_moves_with_one_expected_revision_one_wins(catalog: Catalog, build: Any) -> None:
    versions = [build.version("churn") for _ in range(4)]
    catalog.move_alias("churn", "champion", versions[0].id)
    for round_ in range(3):
        held = catalog.get_alias("churn", "champion")
        revision = held.revision
        targets = [v.id for v in versions if v.id != held.version_id]  # never a no-op move

        def move(i: int, revision: int = revision, targets: list[str] = targets) -> AliasRecord:
            return catalog.move_alias("churn", "champion", targets[i], expected_revision=revision)

        won, lost = race(3, move)
        assert len(won) == 1, (round_, lost)
        assert [type(e) for e in lost] == [AliasConflict, AliasConflict]
        alias = catalog.get_alias("churn", "champion")
        assert alias == won[0]
        assert alias.revision == revision + 1
        history = catalog.alias_history("churn", "champion")
        assert len(history) == revision + 1
        assert history[0].to_version_id == won[0].version_id


def test_concurrent_creations_of_one_alias_one_wins(catalog: Catalog, build: Any) -> None:
    versions = [build.version("churn") for _ in range(3)]
    won, lost = race(
        3, lambda i: catalog.move_alias("churn", "champion", versions[i].id, expected_revision=0)
    )
    assert len(won) == 1
    assert [type(e) for e in lost] == [AliasConflict, AliasConflict]
    assert len(catalog.alias_history("churn", "champion")) == 1


def test_unguarded_concurrent_moves_never_lose_an_update(catalog: Catalog, build: Any) -> None:
    versions = [build.version("churn") for _ in range(5)]
    catalog.move_alias("churn", "champion", versions[0].id)
    # distinct targets, none the first holder: a move to the holder would be refused as a no-op
    won, lost = race(4, lambda i: catalog.move_alias("churn", "champion", versions[i + 1].id))
    assert all(isinstance(e, AliasConflict) for e in lost)
    history = catalog.alias_history("churn", "champion")
    assert len(history) == 1 + len(won)  # every move that returned is in the history
    assert [m.revision for m in history] == list(range(len(history), 0, -1))
    assert catalog.get_alias("churn", "champion").version_id == history[0].to_version_id
    # each move starts from where the previous one left the alias: nothing overwritten
    for newer, older in itertools.pairwise(history):
        assert newer.from_version_id == older.to_version_id


def test_rollback_returns_to_the_previous_holder(catalog: Catalog, build: Any) -> None:
    v1, v2 = build.version("churn"), build.version("churn")
    catalog.move_alias("churn", "champion", v1.id)
    catalog.move_alias("churn", "champion", v2.id)
    back = catalog.rollback_alias("churn", "champion", actor="ana", reason="latency regression")
    assert (back.version_id, back.revision) == (v1.id, 3)
    latest = catalog.alias_history("churn", "champion")[0]
    assert (latest.from_version_id, latest.to_version_id) == (v2.id, v1.id)
    assert (latest.actor, latest.reason) == ("ana", "latency regression")
    [event] = catalog.audit_events(subject="alias:churn@champion", limit=1)
    assert event.action == "alias.rollback"
    assert event.payload["to_ref"] == "churn:v1"


def test_rollback_without_a_previous_holder(catalog: Catalog, build: Any) -> None:
    version = build.version("churn")
    with pytest.raises(NotFound, match="unknown alias 'churn@champion'"):
        catalog.rollback_alias("churn", "champion")
    catalog.move_alias("churn", "champion", version.id)
    with pytest.raises(CatalogError, match="no earlier holder to roll back to") as info:
        catalog.rollback_alias("churn", "champion")
    assert "regrow promote <version> --alias champion" in str(info.value)
    assert catalog.get_alias("churn", "champion").revision == 1


def test_alias_targets_must_exist_and_belong_to_the_system(catalog: Catalog, build: Any) -> None:
    fraud = build.version("fraud")
    build.version("churn")
    with pytest.raises(VersionNotFound, match="unknown version 'nope'"):
        catalog.move_alias("churn", "champion", "nope")
    with pytest.raises(CatalogError, match="belongs to system 'fraud', not 'churn'"):
        catalog.move_alias("churn", "champion", fraud.id)
    with pytest.raises(ConfigError, match="invalid alias name 'cham pion'"):
        catalog.move_alias("churn", "cham pion", fraud.id)
    with pytest.raises(ConfigError, match="'expected_revision' must be >= 0"):
        catalog.move_alias("fraud", "champion", fraud.id, expected_revision=-1)
    assert catalog.list_aliases() == []
    assert catalog.audit_events(subject="alias:churn@champion") == []


def test_get_and_list_aliases(catalog: Catalog, build: Any) -> None:
    churn, fraud = build.version("churn"), build.version("fraud")
    a = catalog.move_alias("fraud", "champion", fraud.id)
    b = catalog.move_alias("churn", "challenger", churn.id)
    c = catalog.move_alias("churn", "champion", churn.id)
    assert catalog.list_aliases() == [b, c, a]
    assert catalog.list_aliases("churn") == [b, c]
    with pytest.raises(NotFound, match="unknown alias 'churn@shadow'; the aliases of 'churn' are"):
        catalog.get_alias("churn", "shadow")
    with pytest.raises(
        NotFound, match=r"no system is named 'weather' \(known systems: 'churn'"
    ) as e:
        catalog.get_alias("weather", "champion")
    assert "id prefix" not in str(e.value)  # 'weather' is no id prefix (from a user trial)
    with pytest.raises(NotFound, match=r"an id prefix needs at least 6 hex characters"):
        catalog.get_alias("abc", "champion")
    assert catalog.alias_history("churn", "shadow") == []
