"""Who acts on the catalog: identities with roles, and their API tokens: ``catalog.identities``.

An **identity** is a name with a role; the roles are ordered, each allowing what the one
before it does and more: ``viewer < operator < approver < admin`` (:data:`ROLES`). Identities
are never deleted: revoking one keeps its row (its name stays in the audit log and the alias
history) and revokes its tokens.

A **token** is ``rgw_<id>_<secret>``: ``id`` is 12 hex characters, the row's key, shown in
listings; ``secret`` is ``secrets.token_urlsafe(32)`` (256 random bits). The secret is returned
once by :meth:`Identities.create_token` and never stored: the catalog keeps an Argon2id hash of
it with a random salt (argon2-cffi). :meth:`Identities.authenticate` turns a token back into
its identity, or raises :class:`~regrow.errors.AuthError` saying what is wrong (an unknown id
and a wrong secret alike, so that a guess does not learn which ids exist), after appending an
``auth.failed`` event (with the token's id when it has one and the precise reason, never its
secret).

Every write is one transaction with its audit event, which covers the rows it wrote:

==================  ====================================================  =================
method              what                                                  audit action
==================  ====================================================  =================
``add``             a new identity with a role                            ``identity.add``
``bootstrap``       the first identity of an empty catalog, as admin      ``identity.bootstrap``
``set_role``        change an identity's role                             ``identity.role``
``revoke``          revoke an identity and its tokens                     ``identity.revoke``
``create_token``    a new token; its secret is returned once              ``token.create``
``revoke_token``    revoke one token                                      ``token.revoke``
``authenticate``    the identity of a token (failures are audited)        ``auth.failed``
==================  ====================================================  =================

>>> from regrow.catalog import Catalog
>>> catalog = Catalog("sqlite://")
>>> catalog.identities.add("ana", "admin", actor="setup").role
'admin'
>>> token, secret = catalog.identities.create_token("ana", label="laptop", actor="ana")
>>> secret.startswith(f"rgw_{token.id}_"), catalog.identities.authenticate(secret).name
(True, 'ana')
>>> [e.action for e in catalog.audit_events()][::-1]
['identity.add', 'token.create']
>>> catalog.close()
"""

from __future__ import annotations

import builtins
import functools
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from regrow.catalog import audit, checks
from regrow.catalog.core import now
from regrow.catalog.models import AuditHead, Identity, Token
from regrow.errors import AuthError, CatalogError, ConfigError, NotFound

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog

__all__ = [
    "ROLES",
    "TOKEN_PREFIX",
    "Identities",
    "IdentityRecord",
    "TokenRecord",
    "check_identity_name",
    "check_role",
    "role_rank",
    "token_id",
]

#: The roles, from least to most allowed: each role may do what the ones before it may.
ROLES = ("viewer", "operator", "approver", "admin")
TOKEN_PREFIX = "rgw_"

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,127}")
_TOKEN = re.compile(r"rgw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_TOKEN_ID = re.compile(r"rgw_([0-9a-f]{12})_")

# Argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane): about 20 ms per verification. The
# secrets are 256 random bits, not passwords, so no amount of hashing work is needed against
# guessing; the salted hash keeps a copy of the database from holding usable tokens, and this
# cost keeps authentication fast enough to run on every command.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


@functools.cache
def _decoy() -> str:
    """A hash to verify against when a token's id is unknown: that takes as long as a wrong
    secret, so timing does not tell which ids exist. Made on first use (it costs ~20 ms)."""
    return _HASHER.hash(secrets.token_urlsafe(32))


def role_rank(role: str) -> int:
    """The rank of ``role`` in :data:`ROLES` (viewer 0 .. admin 3).

    >>> role_rank("approver") > role_rank("operator")
    True
    """
    return ROLES.index(check_role(role))


def token_id(token: str) -> str | None:
    """The id part of ``token`` (the part that may be shown), or None if it has none.

    >>> token_id("rgw_0123456789ab_secret"), token_id("hunter2")
    ('0123456789ab', None)
    """
    found = _TOKEN_ID.match(token.strip()) if isinstance(token, str) else None
    return found.group(1) if found else None


def check_role(role: object) -> str:
    """``role`` if it is one of :data:`ROLES`, else a :class:`~regrow.errors.ConfigError`."""
    if role not in ROLES:
        raise ConfigError(
            f"unknown role {role!r}", hint=f"the roles are {', '.join(ROLES)} (least to most)"
        )
    return str(role)


def check_identity_name(name: object) -> str:
    """``name`` if it can name an identity (a login or an e-mail address, say).

    >>> check_identity_name("ana@example.com")
    'ana@example.com'
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"invalid identity name {name!r}",
            hint="use letters, digits and '_', '.', '@', '+', '-' (at most 128), starting "
            "with a letter, digit or '_'",
        )
    return name


@dataclass(frozen=True)
class IdentityRecord:
    """An identity: ``name``, its ``role``, who created it when, and when it was revoked."""

    name: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    #: The id of the token this identity was authenticated with (:meth:`Identities.authenticate`),
    #: else None. Not stored: :func:`regrow.auth.require` reads the token again through it, so
    #: that revoking the token stops a workspace that is already open.
    via_token: str | None = field(default=None, compare=False)

    @property
    def active(self) -> bool:
        """Whether the identity may still act (it was not revoked)."""
        return self.revoked_at is None


@dataclass(frozen=True)
class TokenRecord:
    """A token of ``identity``, without its secret (which the catalog does not keep)."""

    id: str
    identity: str
    label: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the token still authenticates (neither it nor its identity revoked)."""
        return self.revoked_at is None


R = TypeVar("R", IdentityRecord, TokenRecord)


def _record(cls: type[R], row: Identity | Token) -> R:
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls) if f.name != "via_token"})


class Identities:
    """Identities and tokens in ``catalog`` (see the module docs), as ``catalog.identities``."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    # -- identities ---------------------------------------------------------------------

    def add(self, name: str, role: str, *, actor: str | None = None) -> IdentityRecord:
        """Add identity ``name`` with ``role``; audit ``identity.add``.

        A name already taken (revoked names included: they stay in the history) is refused.
        """
        name, role = check_identity_name(name), check_role(role)
        who = self._catalog._who(actor)

        def write(session: Session) -> IdentityRecord:
            existing = session.get(Identity, name)
            if existing is not None:
                state = "was revoked" if existing.revoked_at else f"has role {existing.role!r}"
                raise CatalogError(
                    f"identity {name!r} already exists (it {state})",
                    hint="change a role with `regrow users role NAME ROLE`; a revoked name "
                    "is never reused, choose another",
                )
            row = Identity(name=name, role=role, created_at=now(), created_by=who)
            session.add(row)
            self._audit(session, who, "identity.add", row, {"role": role})
            return _record(IdentityRecord, row)

        return self._catalog._write(write, retry_on=("pk_identities",))

    def bootstrap(self, name: str) -> IdentityRecord | None:
        """Add ``name`` as ``admin`` if the catalog has no identity at all; else None.

        Audit ``identity.bootstrap``. Writers are serialized on the audit chain's head, so
        of two processes bootstrapping at once only one creates an admin.
        """
        name = check_identity_name(name)

        def write(session: Session) -> IdentityRecord | None:
            session.execute(sa.select(AuditHead.seq).where(AuditHead.id == 1).with_for_update())
            if session.scalar(sa.select(sa.func.count()).select_from(Identity)):
                return None
            row = Identity(name=name, role="admin", created_at=now(), created_by=name)
            session.add(row)
            self._audit(session, name, "identity.bootstrap", row, {"role": "admin"})
            return _record(IdentityRecord, row)

        return self._catalog._write(write)

    def get(self, name: str) -> IdentityRecord:
        """The identity ``name`` (revoked or not); :class:`~regrow.errors.NotFound` if none."""
        with self._catalog._read() as session:
            return _record(IdentityRecord, self._identity(session, name))

    def list(self, *, include_revoked: bool = False) -> list[IdentityRecord]:
        """Every identity, by name; revoked ones too with ``include_revoked``."""
        query = sa.select(Identity).order_by(Identity.name)
        if not include_revoked:
            query = query.where(Identity.revoked_at.is_(None))
        with self._catalog._read() as session:
            return [_record(IdentityRecord, row) for row in session.scalars(query)]

    def count(self) -> int:
        """The number of identities, revoked ones included (0: a catalog to bootstrap)."""
        with self._catalog._read() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(Identity)) or 0)

    def set_role(self, name: str, role: str, *, actor: str | None = None) -> IdentityRecord:
        """Give identity ``name`` the role ``role``; audit ``identity.role``.

        Refused for a revoked identity, and for the last admin (nobody could manage
        identities after it).
        """
        role = check_role(role)
        who = self._catalog._who(actor)

        def write(session: Session) -> IdentityRecord:
            row = self._active(session, name, "change the role of")
            if row.role == role:
                raise CatalogError(
                    f"identity {name!r} has role {role!r} already", hint="nothing to change"
                )
            if row.role == "admin":
                self._keep_an_admin(session, name, "demoting")
            before, row.role = row.role, role
            self._audit(session, who, "identity.role", row, {"from": before, "to": role})
            return _record(IdentityRecord, row)

        return self._catalog._write(write)

    def revoke(self, name: str, *, actor: str | None = None) -> IdentityRecord:
        """Revoke identity ``name`` and every token of it; audit ``identity.revoke``.

        Refused for an identity already revoked, and for the last admin.
        """
        who = self._catalog._who(actor)

        def write(session: Session) -> IdentityRecord:
            row = self._active(session, name, "revoke")
            if row.role == "admin":
                self._keep_an_admin(session, name, "revoking")
            stamp = now()
            row.revoked_at = stamp
            tokens = session.scalars(
                sa.select(Token).where(Token.identity == name, Token.revoked_at.is_(None))
            ).all()
            for token in tokens:
                token.revoked_at = stamp
            ids = sorted(t.id for t in tokens)
            covered = [("tokens", token_id) for token_id in ids]
            self._audit(session, who, "identity.revoke", row, {"tokens": ids}, covered)
            return _record(IdentityRecord, row)

        return self._catalog._write(write)

    # -- tokens -------------------------------------------------------------------------

    def create_token(
        self, identity: str, *, label: str = "", actor: str | None = None
    ) -> tuple[TokenRecord, str]:
        """A new token of ``identity``: its record, and the token itself (shown only now).

        Only a salted Argon2id hash of the secret is stored. Audit ``token.create``.
        """
        label = checks.text("label", label, empty=True)
        who = self._catalog._who(actor)
        secret = secrets.token_urlsafe(32)
        digest = _HASHER.hash(secret)  # outside the transaction: it takes ~20 ms

        def write(session: Session) -> tuple[TokenRecord, str]:
            self._active(session, identity, "create a token for")
            token_id = secrets.token_hex(6)
            row = Token(
                id=token_id,
                identity=identity,
                hash=digest,
                label=label,
                created_at=now(),
                created_by=who,
            )
            session.add(row)
            payload = {"identity": identity, "label": label}
            audit.append(
                session,
                actor=who,
                action="token.create",
                subject=f"token:{token_id}",
                payload=payload,
                rows=[("tokens", token_id)],
            )
            return _record(TokenRecord, row), f"{TOKEN_PREFIX}{token_id}_{secret}"

        return self._catalog._write(write, retry_on=("pk_tokens",))

    def list_tokens(
        self, identity: str | None = None, *, include_revoked: bool = False
    ) -> builtins.list[TokenRecord]:
        """The tokens (of ``identity``, if given), oldest first; revoked ones too with
        ``include_revoked``. Secrets are not kept, so none is listed."""
        query = sa.select(Token).order_by(Token.created_at, Token.id)
        if not include_revoked:
            query = query.where(Token.revoked_at.is_(None))
        with self._catalog._read() as session:
            if identity is not None:
                self._identity(session, identity)
                query = query.where(Token.identity == identity)
            return [_record(TokenRecord, row) for row in session.scalars(query)]

    def get_token(self, token_id: str) -> TokenRecord:
        """The token ``token_id`` (its 12 hex characters); NotFound if there is none."""
        with self._catalog._read() as session:
            return _record(TokenRecord, self._token(session, token_id))

    def revoke_token(self, token_id: str, *, actor: str | None = None) -> TokenRecord:
        """Revoke token ``token_id``; audit ``token.revoke``. Revoking twice is refused."""
        who = self._catalog._who(actor)

        def write(session: Session) -> TokenRecord:
            row = self._token(session, token_id)
            if row.revoked_at is not None:
                raise CatalogError(
                    f"token {token_id!r} was revoked already ({row.revoked_at:%Y-%m-%d %H:%M})",
                    hint="list the active tokens with `regrow tokens list`",
                )
            row.revoked_at = now()
            audit.append(
                session,
                actor=who,
                action="token.revoke",
                subject=f"token:{token_id}",
                payload={"identity": row.identity},
                rows=[("tokens", token_id)],
            )
            return _record(TokenRecord, row)

        return self._catalog._write(write)

    def authenticate(self, token: str, *, actor: str | None = None) -> IdentityRecord:
        """The identity of ``token``, with the token's id as ``via_token``;
        :class:`~regrow.errors.AuthError` if it does not hold.

        Refused, each with an ``auth.failed`` event under ``actor`` (default: the catalog's
        actor): a malformed token, an unknown id, a wrong secret, a revoked token, a revoked
        identity. Messages name at most the token's id. An unknown id and a wrong secret get
        the same message and take as long (a decoy hash is verified), so that neither tells
        which ids exist; the event records which it was.
        """
        text = token.strip() if isinstance(token, str) else ""
        parsed = _TOKEN.fullmatch(text)
        if parsed is None:
            known_id = token_id(text)
            shown = f"token rgw_{known_id}_..." if known_id else "the token given"
            self._refuse(
                actor,
                known_id,
                "malformed",
                f"{shown} is malformed",
                "a regrow token reads rgw_<12 hex>_<43 characters>; copy it whole, as "
                "`regrow tokens create` printed it",
            )
        key, secret = parsed.group(1), parsed.group(2)
        query = sa.select(Token, Identity).join(Identity, Identity.name == Token.identity)
        with self._catalog._read() as session:
            found = session.execute(query.where(Token.id == key)).first()
        row, owner = (None, None) if found is None else found
        verified = _verifies(_decoy() if row is None else row.hash, secret)
        if not verified or row is None or owner is None:
            self._refuse(
                actor,
                key,
                "unknown token" if row is None else "wrong secret",
                f"token {key!r} is unknown or its secret is wrong",
                "check that REGROW_TOKEN holds the whole token; an admin can create a new "
                "one with `regrow tokens create NAME`",
            )
        # The secret matched: the holder may learn what else is wrong with the token.
        if owner.revoked_at is not None:
            self._refuse(
                actor,
                key,
                "revoked identity",
                f"the identity {owner.name!r} of token {key!r} was revoked",
                "a revoked identity cannot act; ask an admin",
            )
        if row.revoked_at is not None:
            self._refuse(
                actor,
                key,
                "revoked token",
                f"token {key!r} was revoked ({row.revoked_at:%Y-%m-%d %H:%M})",
                "ask an admin for a new one: regrow tokens create NAME",
            )
        return replace(_record(IdentityRecord, owner), via_token=key)

    # -- internals ----------------------------------------------------------------------

    def _identity(self, session: Session, name: str) -> Identity:
        row = session.get(Identity, name) if isinstance(name, str) else None
        if row is None:
            names = session.scalars(sa.select(Identity.name).order_by(Identity.name)).all()
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            raise NotFound(
                "identity",
                str(name),
                hint=f"the identities are {shown}" if names else "there is no identity yet",
            )
        return row

    def _active(self, session: Session, name: str, what: str) -> Identity:
        row = self._identity(session, name)
        if row.revoked_at is not None:
            raise CatalogError(
                f"cannot {what} identity {name!r}: it was revoked "
                f"({row.revoked_at:%Y-%m-%d %H:%M})",
                hint="a revoked identity stays revoked; add a new one with `regrow users add`",
            )
        return row

    def _token(self, session: Session, token_id: str) -> Token:
        row = session.get(Token, token_id) if isinstance(token_id, str) else None
        if row is None:
            raise NotFound(
                "token", str(token_id), hint="list tokens and their ids with `regrow tokens list`"
            )
        return row

    @staticmethod
    def _keep_an_admin(session: Session, name: str, what: str) -> None:
        admins = sa.select(sa.func.count()).where(
            Identity.role == "admin", Identity.revoked_at.is_(None), Identity.name != name
        )
        # Locks the chain's head first, so two admins demoting each other cannot both pass.
        session.execute(sa.select(AuditHead.seq).where(AuditHead.id == 1).with_for_update())
        if not session.scalar(admins):
            raise CatalogError(
                f"{what} {name!r} would leave no admin",
                hint="make another identity admin first: regrow users role NAME admin",
            )

    @staticmethod
    def _audit(
        session: Session,
        actor: str,
        action: str,
        row: Identity,
        payload: dict[str, Any],
        more: Iterable[tuple[str, str]] = (),
    ) -> None:
        audit.append(
            session,
            actor=actor,
            action=action,
            subject=f"identity:{row.name}",
            payload=payload,
            rows=[("identities", row.name), *more],
        )

    def _refuse(
        self, actor: str | None, token_id: str | None, reason: str, message: str, hint: str
    ) -> NoReturn:
        """Append ``auth.failed`` (``actor``, the token id, the reason) and raise."""
        who = self._catalog._who(actor)
        subject = f"token:{token_id}" if token_id else "token:?"
        payload = {"token_id": token_id, "reason": reason}
        self._catalog._write(
            lambda session: audit.append(
                session, actor=who, action="auth.failed", subject=subject, payload=payload
            )
        )
        raise AuthError(message, hint=hint)


def _verifies(stored: str, secret: str) -> bool:
    try:
        return _HASHER.verify(stored, secret)
    except (VerificationError, InvalidHashError):
        return False
