"""The Workspace's governance: who acts, the roles operations need, and moving aliases.

:class:`GovernanceMixin` is part of :class:`regrow.Workspace`: it resolves the acting
identity (:mod:`regrow.auth`), checks roles (every mutating Workspace method calls
:meth:`~GovernanceMixin.require` first), manages identities and tokens (admin), registers the
policies commands use, and promotes, approves and rolls back under the policy's
``promotion`` section (:mod:`regrow.catalog.promotion`). Reproducing a version and tagging
experiments live here too. See docs/governance.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from regrow.catalog.catalog import Catalog
from regrow.catalog.records import AliasRecord, SystemVersionRecord
from regrow.catalog.store import ArtifactStore
from regrow.config import Config
from regrow.errors import ConfigError, RegrowError

if TYPE_CHECKING:
    from regrow.catalog.experiments import ExperimentRecord
    from regrow.catalog.identities import IdentityRecord, TokenRecord
    from regrow.catalog.promotion import ApprovalRecord, PromotionRules
    from regrow.plan.policy import Policy
    from regrow.progress import ProgressFn
    from regrow.reproduce import ReproduceReport

__all__ = ["GovernanceMixin", "promotion_rules"]


def promotion_rules(policy: Policy) -> PromotionRules:
    """The rules of ``policy``'s ``promotion`` section, as the catalog checks them."""
    from regrow.catalog.promotion import PromotionRules

    section = policy.promotion
    return PromotionRules(
        protected=tuple(section.protected),
        require_blessed=section.require_blessed,
        approvals=section.approvals,
        evaluation_snapshots=tuple(section.evaluation_snapshots),
        policy_id=policy.id,
        gates=policy.gates.to_dict(),
        interface=policy.contracts.interface,
    )


class GovernanceMixin:
    """Identity, roles, policies, promotion, approval, rollback (part of the Workspace)."""

    catalog: Catalog
    config: Config
    store: ArtifactStore
    _token: str | None
    _identity: IdentityRecord | None

    @property
    def identity(self) -> IdentityRecord:
        """Who acts through this workspace: the identity of the token it was opened with (or
        ``$REGROW_TOKEN``), else (when the workspace allows it) the identity of the OS login of
        this process; resolved once, on first use (see :mod:`regrow.auth`). Every write is
        recorded under its name. An identity from a token keeps the token's id
        (``via_token``), so that :meth:`require` refuses once the token is revoked."""
        if self._identity is None:
            from regrow.auth import resolve_identity

            self._identity = resolve_identity(
                self.catalog, token=self._token, allow_os_user=self.config.allow_os_user
            )
            self.catalog.actor = self._identity.name
        return self._identity

    def require(self, role: str, what: str) -> None:
        """Raise :class:`~regrow.errors.PermissionDenied` (audited ``auth.denied``) unless the
        acting identity's role is at least ``role``, and :class:`~regrow.errors.AuthError`
        (audited ``auth.failed``) if the identity, or the token it was resolved from, was
        revoked since it was resolved (:func:`regrow.auth.require` reads both again)."""
        from regrow.auth import require as check

        check(self.catalog, self.identity, role, what)

    def add_identity(self, name: str, role: str) -> IdentityRecord:
        """Add an identity with ``role`` (viewer, operator, approver, admin); admin only."""
        self.require("admin", "add identities")
        return self.catalog.identities.add(name, role)

    def set_role(self, name: str, role: str) -> IdentityRecord:
        """Change an identity's role; admin only."""
        self.require("admin", "change roles")
        return self.catalog.identities.set_role(name, role)

    def revoke_identity(self, name: str) -> IdentityRecord:
        """Revoke an identity and its tokens (it can no longer act); admin only."""
        self.require("admin", "revoke identities")
        return self.catalog.identities.revoke(name)

    def create_token(self, name: str, *, label: str = "") -> tuple[TokenRecord, str]:
        """A new API token for identity ``name``: its record and the token itself, shown only
        now (only a salted hash is kept); admin only."""
        self.require("admin", "create tokens")
        return self.catalog.identities.create_token(name, label=label)

    def revoke_token(self, token_id: str) -> TokenRecord:
        """Revoke an API token: an admin, or the identity it belongs to."""
        from regrow.errors import NotFound

        try:
            owner: str | None = self.catalog.identities.get_token(token_id).identity
        except NotFound:
            owner = None
        if owner != self.identity.name:  # a non-admin learns nothing of others' tokens
            self.require("admin", "revoke a token that is not yours")
        return self.catalog.identities.revoke_token(token_id)

    def _policy(self, policy: Policy | str | os.PathLike[str] | None) -> Policy:
        """``policy`` loaded (a path; None: the workspace's policy, see :meth:`policy`) and
        registered in the catalog on first use (``catalog.policies``, audited
        ``policy.register``)."""
        from regrow.plan.policy import Policy, load_policy

        if policy is None:
            loaded, source = self.policy(), "the workspace's policy"
        elif isinstance(policy, Policy):
            loaded, source = policy, "a Policy object"
        else:
            loaded, source = load_policy(policy), str(policy)
        self.catalog.policies.register(loaded.id, loaded.to_dict(), source=source[:255])
        return loaded

    def policy(self) -> Policy:
        """The workspace's policy: the one an admin pinned (:meth:`set_policy`), else the
        shipped default. Promotions follow its ``promotion`` section; evaluations, plans and
        runs use it when given no other."""
        from regrow.plan.policy import Policy

        pinned = self.catalog.policies.pinned()
        if pinned is None:
            return Policy.default()
        return Policy.from_dict(pinned.body, source=f"the workspace's policy {pinned.id}")

    def set_policy(self, policy: Policy | str | os.PathLike[str]) -> Policy:
        """Pin ``policy`` (a file or a Policy) as the workspace's policy; admin only. Audited
        (``policy.register`` when new, then ``policy.pin``)."""
        self.require("admin", "set the workspace's policy")
        loaded = self._policy(policy)
        self.catalog.policies.pin(loaded.id)
        return loaded

    # -- promoting ----------------------------------------------------------------------------

    def promote(
        self,
        ref: str,
        alias: str = "champion",
        *,
        reason: str = "",
        expected_revision: int | None = None,
        policy: Policy | str | os.PathLike[str] | None = None,
        force: bool = False,
        new: bool = False,
    ) -> AliasRecord:
        """Point ``alias`` at version ``ref`` (compare-and-set; recorded and audited).

        The rules are the ``promotion`` section of the workspace's policy (:meth:`policy`); a
        ``policy`` other than that one needs the admin role. An alias the rules protect
        (default ``champion``) moves only when the version has a blessed evaluation against
        the alias's holder, under that policy's gates, on a snapshot it accepts, and the
        policy's number of approvals, given for replacing that holder, by identities other
        than its author (:meth:`approve`); otherwise :class:`~regrow.errors.PromotionRefused`
        names everything missing, the attempt is audited and nothing moves. ``force`` needs
        the admin role and a ``reason``. A move to the version the alias holds is refused.
        An alias of a new name is created, unless the name is close to an alias the system
        has or the policy protects (``champoin``): that is refused with a did-you-mean,
        unless ``new``. See :mod:`regrow.catalog.promotion`.
        """
        self.require("operator", f"promote to {alias!r}")
        if force:
            self.require("admin", f"force a promotion to {alias!r}")
        version: SystemVersionRecord | None = None
        try:
            version = self.catalog.get_system_version(ref)
            governing = self._policy(None)  # registered on first use, like any policy used
            chosen = self._policy(policy) if policy is not None else governing
            if chosen.id != governing.id:
                self.require(
                    "admin", f"promote under a policy other than the workspace's ({governing.id})"
                )
            if not new:
                self._not_a_misspelt_alias(version.system, alias, chosen)
        except RegrowError as refused:  # a bad policy, version or role: the attempt is audited
            system = version.system if version is not None else "?"
            self.catalog.audit(
                "promotion.refused",
                f"alias:{system}@{alias}",
                {"to": ref, "refused": str(refused)},
            )
            raise
        rules = promotion_rules(chosen)
        return self.catalog.move_alias(
            version.system, alias, version.id, expected_revision=expected_revision,
            reason=reason, rules=rules, force=force,
        )  # fmt: skip

    def promotion_lacks(self, ref: str, alias: str = "champion") -> list[str]:
        """What :meth:`promote` of ``ref`` to ``alias`` would lack now under the workspace's
        policy (empty: it would be allowed), checked by the code a promotion runs
        (:func:`regrow.catalog.promotion.missing`); nothing moves and nothing is audited."""
        version = self.catalog.get_system_version(ref)
        return self.catalog.promotion_lacks(
            version.system, alias, version.id, rules=promotion_rules(self.policy())
        )

    def approve(self, ref: str, alias: str = "champion", *, note: str = "") -> ApprovalRecord:
        """Approve version ``ref`` for ``alias`` as the acting identity (approver role or above;
        never the version's author). Audited ``approval.add``."""
        self.require("approver", f"approve a version for {alias!r}")
        try:
            version = self.catalog.get_system_version(ref)
            self._approvable(version.system, alias)
        except RegrowError as refused:  # the attempt is audited
            self.catalog.audit(
                "approval.refused", f"alias:?@{alias}", {"version": ref, "refused": str(refused)}
            )
            raise
        return self.catalog.approvals.add(version.id, alias, note=note)

    def _approvable(self, system: str, alias: str) -> None:
        """Refuse an approval for an alias that neither exists nor is protected: it could never
        count (a typo such as 'champoin' was recorded, and the approver believed it done)."""
        protected = set(self.policy().promotion.protected)
        existing = {a.name for a in self.catalog.list_aliases(system)}
        if alias in protected or alias in existing:
            return
        import difflib

        known = sorted(protected | existing)
        close = difflib.get_close_matches(alias, known, n=1)
        raise ConfigError(
            f"{system} has no alias {alias!r}, and the policy does not protect one of that name: "
            "an approval for it would never count",
            hint=f"did you mean {close[0]!r}?"
            if close
            else f"approvals count for the protected aliases: {', '.join(known) or 'none'}",
        )

    def _not_a_misspelt_alias(self, system: str, alias: str, policy: Policy) -> None:
        """Refuse to create alias ``alias`` when its name is close to one ``system`` has or
        ``policy`` protects: ``--alias champoin`` created an alias nobody serves, and
        nothing could take it back."""
        protected = set(policy.promotion.protected)
        existing = {a.name for a in self.catalog.list_aliases(system)}
        if alias in existing or alias in protected:
            return
        import difflib

        close = difflib.get_close_matches(alias, sorted(protected | existing), n=1, cutoff=0.8)
        if close:
            raise ConfigError(
                f"{system} has no alias {alias!r}: promoting would create it, and its name is "
                f"close to {close[0]!r}",
                hint=f"did you mean --alias {close[0]}? To create an alias named {alias!r}, "
                "pass --new",
            )

    def rollback(self, system: str, alias: str = "champion", *, reason: str = "") -> AliasRecord:
        """Move ``alias`` back one step in its history of holders (never toggles)."""
        self.require("operator", f"roll back {alias!r}")
        return self.catalog.rollback_alias(system, alias, reason=reason)

    def tag_experiment(self, ref: str, tags: Iterable[str]) -> ExperimentRecord:
        """Add ``tags`` to experiment ``ref`` (an id or a prefix of at least 6 characters)."""
        self.require("operator", "tag an experiment")
        return self.catalog.experiments.tag(ref, list(tags))

    def reproduce(
        self,
        ref: str,
        *,
        tolerance: float = 1e-6,
        keep: str | os.PathLike[str] | None = None,
        progress: ProgressFn | None = None,
    ) -> ReproduceReport:
        """Rebuild version ``ref`` from its record in a scratch workspace (kept in ``keep`` when
        given) and compare it component by component: fingerprint, artifact bytes, outputs
        within ``tolerance`` (see :func:`regrow.reproduce.reproduce`). Writes one audit event."""
        from regrow.reproduce import reproduce

        self.require("operator", "reproduce a version")
        scratch = None if keep is None else Path(keep)
        return reproduce(self, ref, tolerance=tolerance, scratch=scratch, progress=progress)
