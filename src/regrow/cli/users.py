"""`regrow users | tokens | whoami`: identities, their roles and API tokens.

Managing identities and tokens needs the admin role; any identity may run ``whoami``, list
its own tokens and revoke one of them (a token that leaked). A command acts as the identity of
``$REGROW_TOKEN``, else of the OS user when the workspace allows it (see :mod:`regrow.auth`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from regrow.cli._app import AsJson, Home, app, err, out, print_json, workspace

if TYPE_CHECKING:
    from regrow.catalog.identities import IdentityRecord

__all__ = ["tokens_app", "users_app", "whoami"]

users_app = typer.Typer(help="Manage identities and their roles (admin).", no_args_is_help=True)
tokens_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

Name = Annotated[str, typer.Argument(help="The identity's name (a login, an e-mail address).")]
Role = Annotated[str, typer.Argument(help="viewer, operator, approver or admin.")]
All = Annotated[bool, typer.Option("--all", help="Include revoked ones.")]


def _when(value: object) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def _fields(identity: IdentityRecord) -> dict[str, object]:
    """An identity as JSON shows it: its stored fields (``via`` says how it was recognized)."""
    shown = dict(identity.__dict__)
    del shown["via_token"]
    return shown


@users_app.command("add")
def users_add(
    name: Name,
    role: Annotated[str, typer.Option(help="viewer, operator, approver or admin.")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Add an identity with a role (admin only)."""
    with workspace(home) as ws:
        added = ws.add_identity(name, role)
    if as_json:
        print_json(_fields(added))
    else:
        out.print(f"added {added.name} ({added.role})")


@users_app.command("list")
def users_list(include_revoked: All = False, home: Home = None, as_json: AsJson = False) -> None:
    """List identities and their roles."""
    with workspace(home) as ws:
        ws.identity  # noqa: B018 -- an unknown or revoked caller is refused
        rows = ws.catalog.identities.list(include_revoked=include_revoked)
    if as_json:
        print_json([_fields(r) for r in rows])
        return
    table = Table()
    for col in ("name", "role", "created", "by", "revoked"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(r.name, r.role, _when(r.created_at), r.created_by, _when(r.revoked_at))
    out.print(table)


@users_app.command("role")
def users_role(name: Name, role: Role, home: Home = None, as_json: AsJson = False) -> None:
    """Change an identity's role (admin only; the last admin keeps its role)."""
    with workspace(home) as ws:
        ws.require("admin", "change roles")  # before reading: names are not for everyone
        before = ws.catalog.identities.get(name).role
        changed = ws.set_role(name, role)
    if as_json:
        print_json(_fields(changed))
    else:
        out.print(f"{changed.name}: {before} -> {changed.role}")


@users_app.command("revoke")
def users_revoke(name: Name, home: Home = None, as_json: AsJson = False) -> None:
    """Revoke an identity and all its tokens (admin only; kept in the history)."""
    with workspace(home) as ws:
        ws.require("admin", "revoke identities")  # before reading: names are not for everyone
        tokens = ws.catalog.identities.list_tokens(name)
        revoked = ws.revoke_identity(name)
    if as_json:
        print_json({**_fields(revoked), "tokens": [t.id for t in tokens]})
    else:
        out.print(f"revoked {revoked.name} and its {len(tokens)} active token(s)")


@tokens_app.command("create")
def tokens_create(
    name: Name,
    label: Annotated[str, typer.Option(help="What the token is for (e.g. ci, laptop).")] = "",
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Create an API token for an identity (admin only). It is printed once, never again."""
    with workspace(home) as ws:
        record, token = ws.create_token(name, label=label)
    if as_json:
        print_json({**record.__dict__, "token": token})
    else:
        out.print(token)
    err.print(
        f"token {record.id} for {record.identity}: shown only now, store it (e.g. as "
        "REGROW_TOKEN); the catalog keeps only a hash of it"
    )


@tokens_app.command("list")
def tokens_list(
    identity: Annotated[
        str | None,
        typer.Option(help="Only this identity's tokens (default: yours, or all for an admin)."),
    ] = None,
    include_revoked: All = False,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """List API tokens (ids, labels, dates; never a secret). Non-admins see their own."""
    from regrow.auth import role_rank

    with workspace(home) as ws:
        me = ws.identity
        if role_rank(me.role) < role_rank("admin"):
            if identity not in (None, me.name):
                ws.require("admin", "list the tokens of another identity")
            identity = me.name
        rows = ws.catalog.identities.list_tokens(identity, include_revoked=include_revoked)
    if as_json:
        print_json([r.__dict__ for r in rows])
        return
    table = Table()
    for col in ("id", "identity", "label", "created", "by", "revoked"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(
            r.id, r.identity, r.label, _when(r.created_at), r.created_by, _when(r.revoked_at)
        )
    out.print(table if rows else "no tokens")


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (see `regrow tokens list`).")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Revoke an API token (an admin's, or your own token's)."""
    with workspace(home) as ws:
        revoked = ws.revoke_token(token_id)
    if as_json:
        print_json(revoked.__dict__)
    else:
        out.print(f"revoked token {revoked.id} of {revoked.identity}")


@app.command()
def whoami(home: Home = None, as_json: AsJson = False) -> None:
    """Show the identity this shell acts as, its role, and how it was recognized."""
    with workspace(home) as ws:
        me = ws.identity
    via = "OS user" if me.via_token is None else f"token {me.via_token}"
    if as_json:
        print_json({**_fields(me), "via": via})
    else:
        out.print(f"{me.name} ({me.role}) via {via}")
