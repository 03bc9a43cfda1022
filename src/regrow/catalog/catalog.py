"""The :class:`Catalog`: regrow's metadata database.

It records schemas, snapshots and their profiles, component versions, system versions
(manifests), runs, evaluations, aliases with their full move history, and a hash-chained audit
log, on SQLite (the embedded default) or PostgreSQL (for teams). Each part lives in its own
module as a mixin over :class:`~regrow.catalog.core.CatalogCore`:

=========================  ====================================================
:mod:`.datasets`           schemas, snapshots, profiles
:mod:`.components`         component versions (fingerprints)
:mod:`.versions`           system versions, reference resolution, lineage
:mod:`.runs`               runs and evaluations
:mod:`.monitoring`         monitoring reports (a version checked on a window)
:mod:`.plans`              plans and their status (proposed, running, executed)
:mod:`.aliases`            compare-and-set alias moves, rollback, history
:mod:`.audit`              the hash-chained audit log
:mod:`.integrity`          ``catalog.integrity``: what ``regrow doctor`` checks and repairs
:mod:`.leases`             ``catalog.leases``: run heartbeats, fit leases on fingerprints
:mod:`.outputs`            ``catalog.outputs``: stored member outputs (a cache of predictions)
:mod:`.predictions`        ``catalog.predictions``: the prediction log's files, feedback labels
:mod:`.policies`           ``catalog.policies``: the policies commands used, registered on first use
:mod:`.identities`         ``catalog.identities``: identities with roles, API tokens
:mod:`.experiments`        ``catalog.experiments``: plans, manual changes and rollouts as
                           experiments (rationale, expected vs actual, contingency, tags)
:mod:`.rollouts`           ``catalog.rollouts``: rollouts as persisted state machines (every
                           move compare-and-set on a revision, and audited)
:mod:`.watches`            ``catalog.watches``: ``regrow watch``'s lease per system and its
                           cycle records (resumable, audited)
=========================  ====================================================

Every method returns frozen records from :mod:`regrow.catalog.records`; every write is one
short transaction that either fully happens or leaves nothing behind.

>>> catalog = Catalog("sqlite://")
>>> schema = catalog.register_schema("churn", {"columns": {"age": "int"}}, actor="ana")
>>> schema.version, catalog.register_schema("churn", {"columns": {"age": "int"}}) == schema
(1, True)
>>> [event.action for event in catalog.audit_events()]
['schema.create']
>>> catalog.verify_audit()
1
>>> catalog.close()
"""

from __future__ import annotations

from regrow.catalog.aliases import AliasesMixin
from regrow.catalog.audit import AuditMixin
from regrow.catalog.components import ComponentsMixin, component_version_id
from regrow.catalog.datasets import DatasetsMixin
from regrow.catalog.experiments import Experiments
from regrow.catalog.identities import Identities
from regrow.catalog.integrity import Integrity
from regrow.catalog.leases import Leases
from regrow.catalog.monitoring import MonitoringMixin
from regrow.catalog.outputs import Outputs
from regrow.catalog.plans import PlansMixin
from regrow.catalog.policies import Policies
from regrow.catalog.predictions import Predictions
from regrow.catalog.rollouts import Rollouts
from regrow.catalog.runs import RunsMixin
from regrow.catalog.versions import VersionsMixin
from regrow.catalog.watches import Watches

__all__ = ["Catalog", "component_version_id"]


class Catalog(
    DatasetsMixin,
    ComponentsMixin,
    VersionsMixin,
    RunsMixin,
    MonitoringMixin,
    PlansMixin,
    AliasesMixin,
    AuditMixin,
):
    """The metadata catalog at ``url`` (``sqlite:///path.db`` or ``postgresql://...``).

    Opening it migrates the schema to the newest revision unless ``upgrade=False`` (when it
    is already there that costs one query). A catalog is safe to share between threads, and
    separate processes may open the same database; ``sqlite://`` (in memory) is for
    single-threaded tests only. ``actor`` arguments default to ``$REGROW_ACTOR``, else the
    login name. Use it as a context manager, or call :meth:`close`.
    """

    @property
    def integrity(self) -> Integrity:
        """Checks and repairs of artifact references, runs and aliases (``regrow doctor``)."""
        return Integrity(self)

    @property
    def leases(self) -> Leases:
        """Run heartbeats and fit leases on component fingerprints (see :mod:`.leases`)."""
        return Leases(self)

    @property
    def identities(self) -> Identities:
        """Identities with roles, and their API tokens (see :mod:`.identities`)."""
        return Identities(self)

    @property
    def policies(self) -> Policies:
        """The policies commands have used, registered on first use (see :mod:`.policies`)."""
        return Policies(self)

    @property
    def outputs(self) -> Outputs:
        """Stored tables of members' outputs on snapshot rows (see :mod:`.outputs`)."""
        return Outputs(self)

    @property
    def predictions(self) -> Predictions:
        """The prediction log's index and served rows' labels (see :mod:`.predictions`)."""
        return Predictions(self)

    @property
    def experiments(self) -> Experiments:
        """Experiment records: rationale, expected vs actual, contingency, tags (see
        :mod:`.experiments`)."""
        return Experiments(self)

    @property
    def rollouts(self) -> Rollouts:
        """Rollouts as persisted state machines (see :mod:`.rollouts`)."""
        return Rollouts(self)

    @property
    def watches(self) -> Watches:
        """Watch leases and cycles of ``regrow watch`` (see :mod:`.watches`)."""
        return Watches(self)
