"""A PostgreSQL catalog URL whose schema does not exist yet: created, or a hint that says how."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from regrow.testing import run_cli_captured as run

pytestmark = pytest.mark.postgres

PG_URL = make_url(
    os.environ.get("REGROW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
)


def url_with(schema: str, user: str | None = None) -> str:
    url = PG_URL.update_query_dict({"options": f"-csearch_path={schema}"})
    if user is not None:
        url = url.set(username=user, password=None)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def schema(postgres_admin: Engine) -> Iterator[str]:
    """A schema name that does not exist; dropped after the test if something made it."""
    name = f"regrow_t_{secrets.token_hex(6)}"
    yield name
    with postgres_admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


def _exists(engine: Engine, schema: str) -> bool:
    query = sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :name")
    with engine.connect() as conn:
        return conn.execute(query, {"name": schema}).scalar() == 1


def test_init_creates_the_schema_the_url_selects(
    tmp_path: Path, postgres_admin: Engine, schema: str
) -> None:
    home = str(tmp_path / "ws")
    code, out, err = run("init", home, "--catalog-url", url_with(schema))
    assert code == 0, err
    assert _exists(postgres_admin, schema)
    with postgres_admin.connect() as conn:
        query = "SELECT version_num FROM " + f'"{schema}".alembic_version'
        assert conn.execute(sa.text(query)).scalar()
    code, out, err = run("status", "--home", home)
    assert (code, "Traceback" in err) == (0, False), err
    assert "no versions yet" in out


@pytest.fixture
def powerless(postgres_admin: Engine) -> Iterator[str]:
    """A role that may connect to the database but not create schemas in it."""
    role = f"regrow_t_{secrets.token_hex(6)}"
    with postgres_admin.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        may = conn.execute(
            sa.text("SELECT has_database_privilege(:role, current_database(), 'CREATE')"),
            {"role": role},
        ).scalar()
    if may:
        with postgres_admin.begin() as conn:
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
        pytest.skip("on this server every role may create schemas")
    yield role
    with postgres_admin.begin() as conn:
        conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))


def test_a_schema_that_cannot_be_created_gets_a_hint_that_says_so(
    tmp_path: Path, postgres_admin: Engine, schema: str, powerless: str
) -> None:
    home = tmp_path / "ws"
    code, _, err = run("init", str(home), "--catalog-url", url_with(schema, user=powerless))
    assert code == 2
    assert f"the schema '{schema}' that the catalog URL" in err
    assert "does not exist, and creating it failed" in err
    assert f'hint: create it as a user who may (CREATE SCHEMA "{schema}")' in err
    assert "search_path" in err
    assert "Traceback" not in err
    assert not _exists(postgres_admin, schema)
    assert not home.exists()  # a failed init leaves no folder behind


def test_init_shows_the_catalog_url_without_its_password(tmp_path: Path, schema: str) -> None:
    """Trust auth ignores the password; `regrow init` printed it (from a user trial)."""
    url = make_url(url_with(schema)).set(password="s3cretpw").render_as_string(hide_password=False)
    code, out, err = run("init", str(tmp_path / "ws"), "--catalog-url", url)
    assert code == 0, err
    assert "s3cretpw" not in out + err
    assert "***@" in out


def test_a_port_that_is_no_number_is_an_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = str(tmp_path / "ws")
    assert run("init", home)[0] == 0
    monkeypatch.setenv("REGROW_CATALOG_URL", "postgresql://postgres:s3cretpw@127.0.0.1:abc/test")
    code, _, err = run("status", "--home", home)
    assert (code, "Traceback" in err, "s3cretpw" in err) == (2, False, False), err
    assert "cannot parse catalog URL" in err
