"""Who is acting, and whether their role allows it.

:func:`resolve_identity` finds the identity a command acts as:

1. the identity of a token: the ``token`` argument, else ``$REGROW_TOKEN``;
2. else, when the workspace maps OS users (``[auth] os_user = true``, the default), the
   identity named like ``$REGROW_ACTOR``, else the OS login;
3. a catalog with no identity at all is **bootstrapped**: its first user (named as in 2)
   becomes ``admin`` (audited ``identity.bootstrap``), so a new workspace works for its creator
   at once. It applies with ``os_user = false`` too, so that the creator can make the first
   token.

:func:`require` checks a role against :data:`ROLES` (``viewer < operator < approver <
admin``), re-reading the identity so that a role change or a revocation takes effect at once;
a refusal appends ``auth.denied`` and raises :class:`~regrow.errors.PermissionDenied`. The
decorator :func:`requires` does it for a method of an object with ``catalog`` and ``identity``
attributes (the :class:`~regrow.Workspace`).

>>> from regrow.catalog import Catalog
>>> catalog = Catalog("sqlite://")
>>> me = resolve_identity(catalog, token="", allow_os_user=True)  # bootstraps
>>> me.role
'admin'
>>> _ = catalog.identities.add("viv", "viewer", actor=me.name)
>>> require(catalog, catalog.identities.get("viv"), "operator", "train")
Traceback (most recent call last):
...
regrow.errors.PermissionDenied: 'viv' (role viewer) may not train: that needs the operator role; ...
>>> catalog.audit_events(limit=1)[0].action
'auth.denied'
>>> catalog.close()
"""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Protocol, TypeVar

from regrow.catalog import audit
from regrow.catalog.identities import ROLES, IdentityRecord, check_role, role_rank
from regrow.errors import AuthError, NotFound, PermissionDenied

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog

__all__ = ["ROLES", "Guarded", "os_user", "require", "requires", "resolve_identity", "role_rank"]

P = ParamSpec("P")
R = TypeVar("R")


def os_user() -> str:
    """The name an OS user acts under: ``$REGROW_ACTOR``, else the login name."""
    name = os.environ.get("REGROW_ACTOR", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (some containers)
        raise AuthError(
            "this process has no login name to act under",
            hint="set REGROW_TOKEN to an API token, or REGROW_ACTOR to your identity's name",
        ) from None


def resolve_identity(
    catalog: Catalog, *, token: str | None = None, allow_os_user: bool = True
) -> IdentityRecord:
    """The identity acting on ``catalog`` (see the module docs).

    ``token`` defaults to ``$REGROW_TOKEN``; an empty string means no token. Raises
    :class:`~regrow.errors.AuthError` for a bad token, a revoked identity, or an OS user
    without an identity (or any OS user when ``allow_os_user`` is false).
    """
    if token is None:
        token = os.environ.get("REGROW_TOKEN", "")
    if token.strip():
        return catalog.identities.authenticate(token)
    identities = catalog.identities
    if identities.count() == 0:
        first = identities.bootstrap(os_user())
        if first is not None:
            return first
    if not allow_os_user:
        raise AuthError(
            "no token given, and this workspace lets only API tokens identify who acts "
            "([auth] os_user = false)",
            hint="set REGROW_TOKEN to your token; an admin creates one with "
            "`regrow tokens create NAME`",
        )
    name = os_user()
    try:
        me = identities.get(name)
    except NotFound:
        raise AuthError(
            f"the OS user {name!r} has no identity in this catalog",
            hint=f"ask an admin: regrow users add {name} --role operator, or set REGROW_TOKEN "
            "to your API token",
        ) from None
    if not me.active:
        raise AuthError(
            f"identity {name!r} was revoked ({me.revoked_at:%Y-%m-%d %H:%M})",
            hint="a revoked identity cannot act; ask an admin",
        )
    return me


def require(catalog: Catalog, identity: IdentityRecord, role: str, what: str) -> IdentityRecord:
    """``identity`` as stored now, if its role is ``role`` or above; else ``auth.denied`` is
    appended to the audit log and :class:`~regrow.errors.PermissionDenied` raised, naming the
    identity, its role, the role needed and ``what`` was attempted.

    The identity is read again, so a role changed or revoked since it was resolved counts.
    """
    needed = check_role(role)
    current = catalog.identities.get(identity.name)
    if not current.active:
        raise AuthError(
            f"identity {current.name!r} was revoked ({current.revoked_at:%Y-%m-%d %H:%M})",
            hint="a revoked identity cannot act; ask an admin",
        )
    if role_rank(current.role) >= role_rank(needed):
        return current
    payload = {"role": current.role, "needed": needed, "operation": what}
    catalog._write(
        lambda session: audit.append(
            session,
            actor=current.name,
            action="auth.denied",
            subject=f"identity:{current.name}",
            payload=payload,
        )
    )
    raise PermissionDenied(
        f"{current.name!r} (role {current.role}) may not {what}: that needs the {needed} role",
        hint=f"ask an admin: regrow users role {current.name} {needed}",
    )


class Guarded(Protocol):
    """What :func:`requires` needs of the object whose method it guards."""

    @property
    def catalog(self) -> Catalog: ...

    @property
    def identity(self) -> IdentityRecord: ...


S = TypeVar("S", bound=Guarded)


def requires(
    role: str, what: str | None = None
) -> Callable[[Callable[Concatenate[S, P], R]], Callable[Concatenate[S, P], R]]:
    """Decorate a method so that it runs only for ``self.identity`` of ``role`` or above.

    ``what`` names the operation in a refusal (default: the method's name)::

        class Workspace:
            @requires("operator")
            def train(self, system, snapshot): ...
    """
    check_role(role)

    def decorate(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
        operation = what or method.__name__

        @functools.wraps(method)
        def guarded(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            require(self.catalog, self.identity, role, operation)
            return method(self, *args, **kwargs)

        return guarded

    return decorate
