"""Who is acting, and whether their role allows it.

:func:`resolve_identity` finds the identity a command acts as:

1. the identity of a token: the ``token`` argument, else ``$REGROW_TOKEN``;
2. else, when the workspace maps OS users (``[auth] os_user = true``, the default), the
   identity named like the OS login of this process (:func:`os_user`: the account of its user
   id; ``$USER``, ``$LOGNAME`` and ``$REGROW_ACTOR`` do not change it);
3. a catalog with no identity at all is **bootstrapped**: its first user (the OS login, as in 2)
   becomes ``admin`` (audited ``identity.bootstrap``), so a new workspace works for its creator
   at once. It applies with ``os_user = false`` too, so that the creator can make the first
   token.

With ``os_user = true`` the OS login of the process is trusted: whoever runs as an OS account
acts as the identity of that name. People who share an OS account (a service account, a
notebook server) therefore share an identity, and approvals by "someone else" cannot be told
apart; for enforced four-eyes across people sharing an OS account, give each one a token and set
``os_user = false``. A refusal (a bad token, an OS user without an identity, no token where one
is needed) appends ``auth.failed`` under the OS login, with the reason and never a secret.

:func:`require` checks a role against :data:`ROLES` (``viewer < operator < approver <
admin``), re-reading the identity, and the token it was resolved from, so that a role change or a
revocation takes effect at once; a role too low appends ``auth.denied`` and raises
:class:`~regrow.errors.PermissionDenied`. The decorator :func:`requires` does it for a method of
an object with ``catalog`` and ``identity`` attributes (the :class:`~regrow.Workspace`).

>>> from regrow.catalog import Catalog
>>> catalog = Catalog("sqlite://")
>>> me = resolve_identity(catalog, token="", allow_os_user=True)  # bootstraps
>>> (me.name == os_user(), me.role)
(True, 'admin')
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

import dataclasses
import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, NoReturn, ParamSpec, Protocol, TypeVar

from regrow.catalog.identities import ROLES, IdentityRecord, check_role, role_rank
from regrow.errors import AuthError, NotFound, PermissionDenied

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog

__all__ = ["ROLES", "Guarded", "os_user", "require", "requires", "resolve_identity", "role_rank"]

P = ParamSpec("P")
R = TypeVar("R")


def os_user() -> str:
    """The OS login this process runs as: the account of its real user id (on Windows, the
    account of its token). The environment does not change it: ``$USER``, ``$LOGNAME`` and
    ``$REGROW_ACTOR`` are not read. :class:`~regrow.errors.AuthError` if the user id has no
    account (a container started with a bare ``--user 1234``, say).

    >>> import pwd
    >>> os_user() == pwd.getpwuid(os.getuid()).pw_name
    True
    """
    if sys.platform == "win32":
        try:
            return os.getlogin()
        except OSError:
            raise AuthError(
                "this process has no login name to act under",
                hint="set REGROW_TOKEN to an API token",
            ) from None
    import pwd

    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a user id without an account (some containers)
        raise AuthError(
            f"this process runs as user id {uid}, which has no account (no login name) to "
            "act under",
            hint="run as a user with an account (in /etc/passwd), or set REGROW_TOKEN to an "
            "API token",
        ) from None


def resolve_identity(
    catalog: Catalog, *, token: str | None = None, allow_os_user: bool = True
) -> IdentityRecord:
    """The identity acting on ``catalog`` (see the module docs).

    ``token`` defaults to ``$REGROW_TOKEN``; an empty string means no token. The identity of a
    token carries its id (:attr:`~regrow.catalog.identities.IdentityRecord.via_token`), so that
    :func:`require` refuses it once the token is revoked. Raises
    :class:`~regrow.errors.AuthError`, audited ``auth.failed``, for a bad token, a revoked
    identity, or an OS user without an identity (or any OS user when ``allow_os_user`` is
    false).
    """
    if token is None:
        token = os.environ.get("REGROW_TOKEN", "")
    if token.strip():
        return catalog.identities.authenticate(token, actor=_login_or_unknown())
    try:
        login = os_user()
    except AuthError as exc:
        _refuse(catalog, "unknown", "identity:?", "no login name", exc)
    identities = catalog.identities
    if identities.count() == 0:
        first = identities.bootstrap(login)
        if first is not None:
            return first
    if not allow_os_user:
        env = os.environ.get("REGROW_ALLOW_OS_USER", "").strip().lower()
        set_by = (  # the environment may turn it off whatever the file says
            "REGROW_ALLOW_OS_USER=0 in the environment"
            if env in ("0", "false")
            else "[auth] os_user = false in config.toml"
        )
        _refuse(
            catalog,
            login,
            "token:?",
            "no token",
            AuthError(
                f"no token given, and only API tokens identify who acts here ({set_by})",
                hint="set REGROW_TOKEN to your token; an admin creates one with "
                "`regrow tokens create NAME`",
            ),
        )
    try:
        me = identities.get(login)
    except NotFound:
        _refuse(
            catalog,
            login,
            f"identity:{login}",
            "unknown OS user",
            AuthError(
                f"the OS user {login!r} has no identity in this catalog",
                hint=f"ask an admin: regrow users add {login} --role operator, or set "
                "REGROW_TOKEN to your API token",
            ),
        )
    if not me.active:
        _refuse(catalog, login, f"identity:{login}", "revoked identity", _revoked(me))
    return me


def require(catalog: Catalog, identity: IdentityRecord, role: str, what: str) -> IdentityRecord:
    """``identity`` as stored now, if its role is ``role`` or above; else ``auth.denied`` is
    appended to the audit log and :class:`~regrow.errors.PermissionDenied` raised, naming the
    identity, its role, the role needed and ``what`` was attempted.

    The identity is read again, and so is the token it was resolved from (``via_token``): a
    role changed since it was resolved counts, and a revoked identity or token is refused with
    :class:`~regrow.errors.AuthError` (audited ``auth.failed``).
    """
    needed = check_role(role)
    identities = catalog.identities
    current = dataclasses.replace(identities.get(identity.name), via_token=identity.via_token)
    if not current.active:
        _refuse(
            catalog, current.name, f"identity:{current.name}", "revoked identity", _revoked(current)
        )
    if current.via_token is not None:
        token = identities.get_token(current.via_token)
        if not token.active:
            _refuse(
                catalog,
                current.name,
                f"token:{token.id}",
                "revoked token",
                AuthError(
                    f"token {token.id!r} was revoked ({token.revoked_at:%Y-%m-%d %H:%M}) "
                    f"after {current.name!r} authenticated with it",
                    hint="ask an admin for a new one: regrow tokens create NAME",
                ),
            )
    if role_rank(current.role) >= role_rank(needed):
        return current
    catalog.audit(
        "auth.denied",
        f"identity:{current.name}",
        {"role": current.role, "needed": needed, "operation": what},
        actor=current.name,
    )
    raise PermissionDenied(
        f"{current.name!r} (role {current.role}) may not {what}: that needs the {needed} role",
        hint=f"ask an admin: regrow users role {current.name} {needed}",
    )


def _revoked(identity: IdentityRecord) -> AuthError:
    return AuthError(
        f"identity {identity.name!r} was revoked ({identity.revoked_at:%Y-%m-%d %H:%M})",
        hint="a revoked identity cannot act; ask an admin",
    )


def _login_or_unknown() -> str:
    """The OS login, to record who made a refused attempt; ``"unknown"`` if there is none."""
    try:
        return os_user()
    except AuthError:
        return "unknown"


def _refuse(catalog: Catalog, actor: str, subject: str, reason: str, error: AuthError) -> NoReturn:
    """Append ``auth.failed`` (``actor``: the OS login; the reason, never a secret); raise."""
    catalog.audit("auth.failed", subject, {"reason": reason}, actor=actor)
    raise error from None


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
