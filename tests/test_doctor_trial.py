"""`regrow doctor` as a user's trial met it: a damaged catalog file, a corrupted artifact, rows
deleted outside regrow, a lost snapshot with a time column. Each test is one thing it said
wrong or did wrong."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy.exc
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.catalog.catalog import Catalog
from regrow.demo import make_window
from regrow.testing import run_cli


def build() -> System:
    return System(
        "churn",
        target="churned",
        components=[
            Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
            Member("usage", LogisticRegression(), inputs=["sessions_per_week"]),
            Ensemble("ensemble", weights={"account": 1, "usage": 1}),
        ],
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A workspace with churn:v1 trained on snapshot 'customers' (time column 'ts')."""
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(
            make_window(600, start="2026-01-01", days=30, seed=1), name="customers",
            time_column="ts",
        )  # fmt: skip
        ws.train(build(), snap, workers=1)
    return tmp_path / "ws"


def _doctor(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, "doctor", *args, "--home", str(home))


def test_a_damaged_catalog_file_is_a_problem_the_doctor_names(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bytes overwritten in the middle of catalog.db: the doctor said "no problems found"."""
    path = home / "catalog.db"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = b"A" * 3000
    path.write_bytes(bytes(data))
    code, out, err = _doctor(capsys, home)
    assert code == 1, out + err
    assert "database" in out
    assert "the catalog database file is damaged" in out
    assert "restore it from a backup" in out
    assert "Traceback" not in out + err


def test_a_command_that_meets_a_damaged_catalog_says_so_without_a_traceback(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`regrow monitor` met a damaged page and printed SQLAlchemy's 105-line traceback."""

    def damaged(*_args: object, **_kwargs: object) -> None:
        raise sqlalchemy.exc.DatabaseError(
            "SELECT ...", {}, sqlite3.DatabaseError("database disk image is malformed")
        )

    monkeypatch.setattr(Catalog, "list_system_versions", damaged)
    code, out, err = run_cli(capsys, "versions", "churn", "--home", str(home))
    assert code == 2
    assert "error: the catalog database is damaged: database disk image is malformed" in err
    assert "regrow doctor" in err
    assert "Traceback" not in out + err


def test_a_corrupted_artifact_is_not_sent_to_a_training_that_reuses_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hint said "or re-run the training that made it": a run checks sizes, not bytes,
    so it reused the corrupted artifact and nothing changed."""
    with Workspace.open(home) as ws:
        version = ws.catalog.get_system_version("churn:v1")
        account = ws.catalog.get_component_version(version.manifest["account"])
        key = str(account.artifact)
    path = next(p for p in (home / "artifacts").rglob(key))
    data = bytearray(path.read_bytes())
    data[-20:-10] = bytes(b ^ 1 for b in data[-20:-10])  # the same size, other bytes
    path.write_bytes(bytes(data))
    code, out, _ = _doctor(capsys, home)
    assert code == 1
    assert "corrupt" in out
    assert "re-run the training" not in out
    assert "regrow doctor --repair` refits it" in out


def test_the_doctor_keeps_unreferenced_artifacts_while_the_audit_chain_is_broken(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A component version row deleted outside regrow: --repair deleted its artifact as an
    orphan while telling the user to restore the catalog from a backup, which needs it."""
    with Workspace.open(home) as ws:
        version = ws.catalog.get_system_version("churn:v1")
        usage = ws.catalog.get_component_version(version.manifest["usage"])
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("DELETE FROM component_versions WHERE id = ?", (usage.id,))
    code, out, _ = _doctor(capsys, home, "--repair", "--grace", "0s")
    assert code == 1
    assert "audit-chain" in out
    assert "not deleted while the audit chain is broken" in out
    assert list((home / "artifacts").rglob(str(usage.artifact)))  # still there


def test_a_lost_snapshot_hint_stores_it_again_with_its_time_column(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hint left out --time-column: following it stored another snapshot, and the lost
    one stayed lost."""
    with Workspace.open(home) as ws:
        snap = ws.catalog.list_snapshots("customers")[0]
        frame = ws.frame(snap.id)
    path = next(p for p in (home / "artifacts").rglob(str(snap.artifact)))
    path.unlink()
    code, out, _ = _doctor(capsys, home)
    assert code == 1
    assert "regrow snapshot create FILE --name customers --time-column ts" in out
    frame.to_csv(home.parent / "again.csv", index=False)
    again = ("snapshot", "create", str(home.parent / "again.csv"), "--name", "customers")
    code, out, err = run_cli(capsys, *again, "--time-column", "ts", "--home", str(home))
    assert code == 0, err
    assert snap.id[:12] in out  # the same snapshot, written back
    assert _doctor(capsys, home)[0] == 0
