"""Who calls the app: ``Authorization: Bearer <token>`` checked against the catalog.

Tokens are those of ``regrow tokens create`` (:mod:`regrow.catalog.identities`). Checking
one costs an Argon2id verification (~20 ms, on purpose), so a token that checked out is
remembered for ``ttl`` seconds (by its SHA-256, never its text): a revoked token or a lowered
role takes effect within that delay. A failed check is never remembered, and is audited
``auth.failed`` by the catalog; a role too low is audited ``auth.denied``
(:func:`regrow.auth.require`).

Inference is open, or needs a token of role ``viewer`` or above (``[serve] inference =
"token"``); feedback always needs ``operator``.

>>> bearer("Bearer rgw_0123456789ab_x"), bearer("bearer  t0k "), bearer(None)
('rgw_0123456789ab_x', 't0k', None)
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from regrow.auth import require
from regrow.catalog.identities import check_role, role_rank
from regrow.errors import AuthError

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.identities import IdentityRecord

__all__ = ["Guard", "bearer"]

_MAX_CACHED = 4096


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None without one."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Guard:
    """Checks callers' tokens and roles for one app (see the module docs)."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        inference: str = "open",
        ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.inference_open = inference == "open"
        self.ttl = ttl
        self._clock = clock
        self._known: dict[str, tuple[IdentityRecord, float]] = {}
        self._lock = threading.Lock()

    def cached(self, header: str | None, role: str) -> IdentityRecord | None:
        """The caller, if its token checked out less than ``ttl`` ago and its role then was
        ``role`` or above; else None (then :meth:`check`, which may take a while)."""
        token = bearer(header)
        if token is None:
            return None
        hit = self._known.get(_digest(token))
        if hit is None or hit[1] < self._clock():
            return None
        return hit[0] if role_rank(hit[0].role) >= role_rank(role) else None

    def check(self, header: str | None, role: str, what: str) -> IdentityRecord:
        """The caller of ``header``, if its token holds and its role is ``role`` or above.

        :class:`~regrow.errors.AuthError` (401) for no token or a bad one,
        :class:`~regrow.errors.PermissionDenied` (403) for a role too low.
        """
        role = check_role(role)
        token = bearer(header)
        if token is None:
            raise AuthError(
                f"{what} needs an API token",
                hint="send the header 'Authorization: Bearer <token>' (an admin creates one "
                "with `regrow tokens create NAME`)",
            )
        key = _digest(token)
        hit = self._known.get(key)
        if hit is not None and hit[1] >= self._clock():
            identity = hit[0]
            if role_rank(identity.role) >= role_rank(role):
                return identity
        else:
            identity = self.catalog.identities.authenticate(token)
        identity = require(self.catalog, identity, role, what)  # re-read; audits a denial
        with self._lock:
            if len(self._known) >= _MAX_CACHED:
                self._known.clear()
            self._known[key] = (identity, self._clock() + self.ttl)
        return identity


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
