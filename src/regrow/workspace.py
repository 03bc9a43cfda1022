"""The Workspace: regrow's Python API over one catalog and one artifact store.

>>> import tempfile, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> from regrow import Member, System, Workspace
>>> ws = Workspace.init(tempfile.mkdtemp())
>>> data = pd.DataFrame({"x": [0.0, 1, 2, 3, 4, 5] * 10, "y": [0, 0, 0, 1, 1, 1] * 10})
>>> snap = ws.snapshot(data, name="toy")
>>> system = System("toy", target="y", components=[Member("m", LogisticRegression(), inputs=["x"])])
>>> result = ws.train(system, snap)
>>> result.version.ref, result.trained
('toy:v1', ['m'])
>>> ws.train(system, snap).trained       # nothing changed: nothing trained
[]
>>> ws.load("toy:v1").predict(data.head(6)).tolist()
[0, 0, 0, 1, 1, 1]
>>> ws.close()
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy

from regrow._governance import GovernanceMixin
from regrow.catalog.catalog import Catalog
from regrow.catalog.health import DEFAULT_GRACE, DEFAULT_STUCK_AFTER, DoctorReport
from regrow.catalog.health import restore_snapshot_artifact as _restore_snapshot_artifact
from regrow.catalog.lineage import lineage_report
from regrow.catalog.records import (
    EvaluationRecord,
    SchemaRecord,
    SnapshotRecord,
    SystemVersionRecord,
)
from regrow.catalog.refs import check_name
from regrow.catalog.store import ArtifactStore, open_store
from regrow.config import (
    DEFAULT_CATALOG_URL,
    DEFAULT_STORE_URL,
    Config,
    find_home,
    resolve_home,
    restore_folder,
)
from regrow.errors import (
    CatalogError,
    ConfigError,
    DataQualityWarning,
    IncompatibleSchema,
    PlanError,
    RegrowError,
    SchemaError,
    SystemSpecError,
    WorkspaceNotFound,
)
from regrow.services import FittedMemo

# The rest loads when a method needs it, so that opening a workspace and reading the catalog
# (`regrow status`, `regrow versions`) starts without pandas or scikit-learn.
if TYPE_CHECKING:
    import pandas as pd

    from regrow.catalog.identities import IdentityRecord
    from regrow.data.schema import Schema
    from regrow.data.snapshot import PreparedSnapshot
    from regrow.data.snapshot_safety import Review
    from regrow.evaluate.evaluation import Comparison, Gate
    from regrow.model import FittedSystem
    from regrow.monitor.chunks import Chunking
    from regrow.monitoring import MonitorResult
    from regrow.plan.actions import Action
    from regrow.plan.plan import Plan
    from regrow.plan.policy import Policy
    from regrow.plan_runs import PlanRun
    from regrow.progress import ProgressFn
    from regrow.refreshing import EnsembleRefresh
    from regrow.run.backends import ExecutorBackend
    from regrow.run.budget import PlanEstimate
    from regrow.run.runner import RunEvent, RunResult
    from regrow.run.staleness import ComponentStatus
    from regrow.services import Services
    from regrow.skew import SkewReport
    from regrow.system import System

__all__ = ["Workspace"]

#: The serialized size of the fitted components a Workspace keeps read across its commands
#: (:class:`regrow.services.FittedMemo`); the least recently used beyond it are read again.
FITTED_MEMO_BYTES = 256 * 2**20


class Workspace(GovernanceMixin):
    """A catalog and an artifact store, and the operations that use both."""

    def __init__(self, config: Config, *, token: str | None = None, create: bool = False) -> None:
        self.config = config
        self._token = token
        self.home = config.home
        url = config.resolved_catalog_url()
        try:
            # an existing workspace's URL that finds no catalog is refused (a misspelt
            # schema would be created empty); only init (``create``) makes one
            self.catalog = Catalog(url, create=create)
        except sqlalchemy.exc.DBAPIError as exc:
            parsed = sqlalchemy.engine.make_url(url)
            shown = parsed.render_as_string(hide_password=True)
            raise ConfigError(
                f"cannot open the catalog at {shown!r}: {exc.orig}",
                hint=(
                    f"the file {parsed.database!r} is not a readable SQLite database: restore "
                    "it from a backup, or check the catalog URL"
                )
                if parsed.get_backend_name() == "sqlite"
                else "check the catalog URL and that its database server is running",
            ) from exc
        self.store: ArtifactStore = open_store(config.resolved_store_url())
        self._identity: IdentityRecord | None = None
        self._fitted = FittedMemo(max_bytes=FITTED_MEMO_BYTES)

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        catalog_url: str | None = None,
        store_url: str | None = None,
    ) -> Workspace:
        """Create a workspace (or open the one already there) and upgrade its catalog."""
        path = resolve_home(home)
        if (path / "config.toml").is_file():  # opened; an empty catalog at its URL is made
            return cls(Config.load(path), create=True)
        if path.exists() and not path.is_dir():
            raise WorkspaceNotFound(
                f"{str(path)!r} exists and is not a folder", hint="choose another --home"
            )
        config = Config(
            home=path,
            catalog_url=catalog_url or os.environ.get("REGROW_CATALOG_URL") or DEFAULT_CATALOG_URL,
            store_url=store_url or os.environ.get("REGROW_STORE_URL") or DEFAULT_STORE_URL,
        )
        made = not path.exists()
        before = set() if made else set(path.iterdir())
        path.mkdir(parents=True, exist_ok=True)
        try:
            ws = cls(config, create=True)  # checks both URLs, creates the catalog first
        except BaseException:
            restore_folder(path, before, made=made)  # a catalog without a config stayed
            raise
        config.write()
        return ws

    @classmethod
    def open(
        cls, home: str | os.PathLike[str] | None = None, *, token: str | None = None
    ) -> Workspace:
        """Open an existing workspace; ``home`` defaults to ``$REGROW_HOME``, else the nearest
        workspace at or above the current folder (:func:`regrow.config.find_home`).

        ``token`` (default ``$REGROW_TOKEN``) says who acts: see :attr:`identity`. A catalog
        URL that finds no catalog (an empty database, a schema that does not exist: a
        misspelt name) raises :class:`~regrow.errors.ConfigError`; :meth:`init` creates one.
        """
        return cls(Config.load(find_home(home)), token=token)

    def close(self) -> None:
        """Release the catalog's connections."""
        self.catalog.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.home)!r})"

    # -- data ---------------------------------------------------------------------------------

    def snapshot(
        self,
        data: Any,
        *,
        name: str,
        schema: Schema | Mapping[str, Any] | None = None,
        time_column: str | None = None,
        slices: Mapping[str, str] | None = None,
        parents: Iterable[str] = (),
        target: str | None = None,
        allow_schema_change: bool = False,
        check_schema: bool = True,
        delimiter: str | None = None,
        monitor_reference: str | None = None,
        source: str | None = None,
    ) -> SnapshotRecord:
        """Store ``data`` (DataFrame, Arrow table, or CSV/Parquet path) as an immutable snapshot.

        Under a name that has snapshots, the data is compared with the schema of the newest
        one: a removed column, a dtype the old schema does not accept, or nulls in the
        ``target`` raise :class:`~regrow.errors.IncompatibleSchema` with the diff, unless
        ``allow_schema_change``, which records the new schema version and audit event
        ``schema.change``. ``target`` defaults to the target of the newest system version
        trained on a snapshot of this name, if any. Nulls, values read as text in a mostly
        numeric column, infinities (stored as nulls) and added columns are reported as one
        :class:`~regrow.errors.DataQualityWarning` (before anything is written).

        ``check_schema=False`` stores the data as it is: no comparison, no target check, no
        warning (the notes are still kept with the snapshot's profile). Monitoring windows use
        it: dirty data there is a signal to report, not a reason to refuse.

        ``delimiter`` is a CSV file's delimiter (default: found from its first lines).
        ``source`` is where the rows came from, as `regrow snapshot show` says (default: the
        file's path, or the kind of table given).
        ``monitor_reference`` (a snapshot holding part of ``data``; default: this one) is what
        later windows are compared with when a version trained on this snapshot is monitored
        (drift, multivariate drift, label-free estimates): an update that learnt from a window
        and older retained rows is monitored against the window, since the retained rows
        describe the world before it.
        Validation happens first; if recording it fails, the Parquet artifact written for it
        is removed again, so a refused snapshot leaves nothing behind.
        """
        self.require("operator", "snapshot")
        from regrow.data.snapshot import prepare_snapshot
        from regrow.monitor.profile import Profile
        from regrow.monitoring import MONITOR_PROFILE, MONITOR_REFERENCE

        check_name("snapshot", name)
        previous = self.catalog.latest_schema(name) if check_schema else None
        like = _schema_of(previous.spec) if previous is not None else None
        prepared = prepare_snapshot(
            data,
            schema=schema,
            time_column=time_column,
            slices=slices,
            name=name,
            delimiter=delimiter,
            like=like,
            source=source,
        )
        parent_ids = tuple(self.catalog.get_snapshot(p).id for p in parents)
        existed = False
        with contextlib.suppress(LookupError):
            existed = self.catalog.get_snapshot(prepared.id).id == prepared.id
        if existed:
            # The same rows stored again write their artifact back if the store lost it.
            return _restore_snapshot_artifact(
                self.catalog, self.store, self.catalog.get_snapshot(prepared.id), prepared.parquet
            )
        change = None
        if check_schema:
            # A warning or refusal lists each change from the name's registered schemas,
            # classed under the policy's mode (computed only then: most snapshots need none).
            def classes() -> tuple[str, ...]:
                return _classified(self, name, prepared.schema) if like is not None else ()

            wanted = target if target is not None else self.catalog.trained_target(name)
            try:
                review, back = _reviewed(
                    self.catalog, prepared, like, previous, name, wanted, allow_schema_change
                )
            except IncompatibleSchema as exc:
                listed = classes()
                if not listed:
                    raise
                raise IncompatibleSchema(
                    exc.message + "".join(f"\n{line}" for line in listed),
                    hint=exc.hint,
                    problems=exc.problems,
                    changes=exc.changes,
                ) from None
            change = review.change
            if review.warnings:  # (changes from the one-off shape are none to list)
                lines = (*review.warnings, *(classes() if back is None else ()))
                if like is not None:  # an emptied column first, said as what it likely is
                    lines = _emptied_first(self.catalog, prepared, name, lines)
                warnings.warn(_quality_warning(name, lines), stacklevel=2)
        # The monitoring reference, computed once here (mergeable sketches, every slice).
        monitoring = Profile.of(prepared.table, slices=prepared.slices or None).to_dict()
        watched = self.catalog.get_snapshot(monitor_reference) if monitor_reference else None
        had_artifact = self.store.exists(_key_of(prepared.parquet))
        key = self.store.put(prepared.parquet)
        try:
            schema_rec = self.catalog.register_schema(
                name, prepared.schema.to_dict(), change=change
            )
            record = self.catalog.add_snapshot(
                id=prepared.id,
                name=name,
                schema_id=schema_rec.id,
                rows=prepared.rows,
                columns=tuple(prepared.table.column_names),
                column_hashes=prepared.column_hashes,
                artifact=key,
                time_column=prepared.time_column,
                slices=prepared.slices,
                profile=prepared.stored_profile(),
                parent_ids=parent_ids,
            )
        except BaseException:
            if not had_artifact:
                self.store.delete(key)
            raise
        # The snapshot is complete without it: if another writer stored a different one
        # first, monitoring uses that.
        with contextlib.suppress(CatalogError):
            self.catalog.put_profile(record.id, MONITOR_PROFILE, monitoring)
        if watched is not None and watched.id != record.id:
            with contextlib.suppress(CatalogError):  # another writer linked it first
                self.catalog.put_profile(record.id, MONITOR_REFERENCE, {"snapshot": watched.id})
        return record

    def frame(self, ref: str, columns: Iterable[str] | None = None) -> pd.DataFrame:
        """The rows of snapshot ``ref`` (id, id prefix or name) as a pandas DataFrame."""
        self.require("viewer", "read a snapshot")
        from regrow.services import read_frame

        return read_frame(self.catalog, self.store, ref, columns, home=str(self.home))

    # -- training -----------------------------------------------------------------------------

    def _snapshot_for(self, system: System, snapshot: SnapshotRecord | str) -> SnapshotRecord:
        snap = self._snapshot(snapshot)
        if system.adapters:
            snap = self._adapted(system, snap)
        system.validate(columns=snap.columns)
        return snap

    def _adapted(self, system: System, snap: SnapshotRecord) -> SnapshotRecord:
        """``snap`` as ``system`` reads it (see :func:`regrow.windows.adapted_snapshot`)."""
        from regrow.windows import adapted_snapshot

        return adapted_snapshot(self._services(), system.adapters, snap)[0]

    def train(
        self,
        system: System,
        snapshot: SnapshotRecord | str,
        *,
        seed: int | None = None,
        workers: int | None = None,
        backend: ExecutorBackend | None = None,
        progress: Callable[[RunEvent], None] | None = None,
        note: str = "",
    ) -> RunResult:
        """Train every component of ``system`` on ``snapshot``, reusing what already exists.

        The parent of the new version is the system's newest version, if any. If nothing
        changed, nothing is trained and that version is returned.

        Before anything is fitted, a column a component reads that holds numbers stored as
        text (numeric before, or mostly numbers with a few strays) raises
        :class:`~regrow.errors.DataError` naming the column, its stray values and their rows
        (:mod:`regrow.data.training_checks`); a snapshot with few rows to train on gets a
        :class:`~regrow.errors.DataQualityWarning` (fewer than 50, or than 10 per data column
        a member reads). :meth:`update` checks the components it refits the same way.
        """
        self.require("operator", "train")
        from regrow.run.runner import execute, full_bindings

        snap = self._snapshot_for(system, snapshot)
        few = _check_training_data(self.catalog, self.store, system, snap, system.order())
        if few is not None:
            warnings.warn(_quality_warning(snap.name, (few,)), stacklevel=2)
        run_seed = system.seed if seed is None else seed
        parent = self._latest(system.name)
        was = (parent.spec or {}).get("task") if parent is not None else None
        if was is not None and was != system.task:  # its versions would not compare
            raise ConfigError(
                f"system {system.name!r} is a {was} system ({parent.ref}, and every version "  # type: ignore[union-attr]
                f"before it), but this definition says task={system.task!r}",
                hint=f"keep task={was!r}, or give the {system.task} system a name of its own",
            )
        return execute(
            self.catalog,
            self.store,
            system,
            full_bindings(system, snap, run_seed),
            kind="train",
            run_seed=run_seed,
            parent=parent,
            params={"snapshot": snap.id},
            backend=backend,
            workers=workers,
            progress=progress,
            note=note,
        )

    def update(
        self,
        parent: str,
        snapshot: SnapshotRecord | str,
        *,
        components: Iterable[str],
        system: System | None = None,
        seed: int | None = None,
        workers: int | None = None,
        backend: ExecutorBackend | None = None,
        progress: Callable[[RunEvent], None] | None = None,
        note: str = "",
    ) -> RunResult:
        """A partial update: refit ``components`` of ``parent`` on ``snapshot``.

        Every other component keeps the data and seed it was trained with, so its fingerprint
        is unchanged and its version is reused, unless something it depends on changed (its
        code, its parameters when ``system`` is given, or a refitted upstream transform).
        """
        self.require("operator", "update")
        from regrow.run.runner import execute, partial_bindings

        base = self.catalog.get_system_version(parent)
        system = system if system is not None else self.system(base.ref)
        if system.name != base.system:
            raise SystemSpecError(
                f"system {system.name!r} is not the system of {base.ref}",
                hint=f"pass the definition of {base.system!r}",
            )
        snap = self._snapshot_for(system, snapshot)
        targets = [components] if isinstance(components, str) else list(components)
        if not targets:
            raise SystemSpecError(
                f"update of {base.ref} names no component to refit",
                hint=f"name one or more of {list(system.components)}",
            )
        for t in targets:
            system[t]  # raises with a close-match hint for unknown names
        few = _check_training_data(self.catalog, self.store, system, snap, targets)
        if few is not None:
            warnings.warn(_quality_warning(snap.name, (few,)), stacklevel=2)
        run_seed = system.seed if seed is None else seed
        result = execute(
            self.catalog,
            self.store,
            system,
            partial_bindings(self.catalog, system, base, snap, run_seed, fresh=targets),
            kind="update",
            run_seed=run_seed,
            parent=base,
            params={"snapshot": snap.id, "components": targets},
            backend=backend,
            workers=workers,
            progress=progress,
            note=note,
        )
        from regrow.experiments import record_update

        record_update(self.catalog, result, components=targets, note=note)
        return result

    def adapt(self, ref: str, adapters: Iterable[Any], *, note: str = "") -> RunResult:
        """A new version of ``ref`` that reads its rows through ``adapters`` (replacing the
        version's own; see :mod:`regrow.data.adapters`), its parent ``ref``.

        Every component keeps the data and seed it was trained with, so nothing is re-fitted:
        the adapters leave the rows it was trained on as they are (the point of an adapter is to
        bring new rows to that shape). The same adapters as ``ref``'s make no new version.
        """
        self.require("operator", "adapt a version")
        from regrow.run.runner import execute, partial_bindings

        base = self.catalog.get_system_version(ref)
        if base.snapshot_id is None:
            raise SystemSpecError(
                f"{base.ref} records no training snapshot", hint="adapt a version trained on one"
            )
        system = self.system(base.ref).with_adapters(adapters)
        system.validate()  # an adapter of a column no component reads is refused
        snap = self.catalog.get_snapshot(base.snapshot_id)
        return execute(
            self.catalog,
            self.store,
            system,
            partial_bindings(self.catalog, system, base, snap, system.seed, fresh=()),
            kind="update",
            run_seed=system.seed,
            parent=base,
            params={"snapshot": snap.id, "components": [], "adapters": system.adapters.to_list()},
            note=note or f"adapters {system.adapters.digest()}",
        )

    def _latest(self, system: str) -> SystemVersionRecord | None:
        versions = self.catalog.list_system_versions(system)
        return versions[0] if versions else None

    # -- reading versions ---------------------------------------------------------------------

    def load(self, ref: str) -> FittedSystem:
        """The fitted system of version ``ref`` (``churn:v2``, ``churn@champion``, ``churn``)."""
        self.require("viewer", "load a version")
        return self._services().load(ref)

    def _services(self) -> Services:
        """The catalog, the store and loaders for one command (see :mod:`regrow.services`)."""
        from regrow.services import Services

        return Services(
            self.catalog, self.store, self.snapshot, home=str(self.home), fitted=self._fitted
        )

    def _snapshot(self, snapshot: SnapshotRecord | str) -> SnapshotRecord:
        return self.catalog.get_snapshot(snapshot) if isinstance(snapshot, str) else snapshot

    def system(self, ref: str) -> System:
        """Rebuild the (unfitted) System definition stored with version ``ref``."""
        self.require("viewer", "read a version's system")
        return self.load(ref).definition()

    def status(
        self,
        ref: str,
        *,
        system: System | None = None,
        snapshot: SnapshotRecord | str | None = None,
    ) -> list[ComponentStatus]:
        """Each component of version ``ref``: fresh, or stale with the causes."""
        self.require("viewer", "read a version's status")
        from regrow.run.staleness import staleness

        version = self.catalog.get_system_version(ref)
        records = self.catalog.get_component_versions(list(version.manifest.values()))
        snap = self._snapshot(snapshot) if snapshot is not None else None
        trained_on = {}
        if system is not None and snap is None:
            ids = {r.snapshot_id for r in records.values() if r.snapshot_id}
            trained_on = {i: self.catalog.get_snapshot(i) for i in ids}
        from regrow.run.adapted import adapted_hashes

        return staleness(
            version,
            records,
            system=system,
            snapshot=snap,
            trained_on=trained_on,
            adapted=lambda bound: adapted_hashes(self.store, bound),
        )

    def lineage(self, ref: str, *, depth: int | None = None) -> dict[str, Any]:
        """Where version ``ref`` came from: data, components and why each was trained, runs."""
        self.require("viewer", "read a version's lineage")
        return lineage_report(self.catalog, self.catalog.get_system_version(ref), depth=depth)

    def monitor(
        self,
        ref: str,
        window: Any,
        *,
        slices: Mapping[str, str] | Iterable[str] | None = None,
        record: bool = True,
        performance: bool = True,
        progress: ProgressFn | None = None,
        chunking: Chunking | None = None,
        alerts: Mapping[str, Mapping[str, float]] | None = None,
    ) -> MonitorResult:
        """Check version ``ref`` on ``window``: data quality, drift per feature and chunk,
        multivariate drift, estimated and realised performance, alerts, impact; stored in the
        catalog.

        ``window`` is a snapshot (record, id or name), or rows: a DataFrame, an Arrow table or
        a ``.csv`` / ``.parquet`` path, stored as snapshot ``<system>-window`` with the report
        only once the check succeeded. See :mod:`regrow.monitoring`. ``slices`` (names of
        the window's slices, or names to expressions) defaults to the window's slices;
        ``performance=False`` skips the labelled performance report. ``chunking``
        (:class:`~regrow.monitor.chunks.Chunking`) splits the window by size, count or period;
        alert thresholds come from the policy's ``monitoring`` section, extended by ``alerts``
        (``{"roc_auc": {"min": 0.8}}``). ``progress`` receives
        :class:`~regrow.progress.Step` events; the result's ``timings`` say where the time went.
        """
        self.require("operator", "monitor")
        from regrow.monitoring import monitor_version

        chosen = slices if slices is None or isinstance(slices, Mapping | str) else list(slices)
        return monitor_version(
            self._services(), ref, window, slices=chosen, record=record,
            performance=performance, progress=progress, chunking=chunking,
            settings=self.policy().monitoring_with(alerts),
        )  # fmt: skip

    # -- planning ---------------------------------------------------------------------------

    def plan(
        self,
        ref: str,
        window: Any,
        *,
        policy: Policy | str | os.PathLike[str] | None = None,
        record: bool = True,
        progress: ProgressFn | None = None,
        tags: Iterable[str] = (),
        contingency: str | None = None,
        why: Iterable[str] = (),
    ) -> Plan:
        """Plan the smallest update of version ``ref`` that fixes what ``window`` shows.

        ``window`` is a snapshot or rows, as for :meth:`monitor` (rows are stored as
        ``<system>-window`` with the plan, once it is made). ``policy`` is a
        :class:`~regrow.plan.policy.Policy`, a YAML file's path, or None for the default.
        ``progress`` receives :class:`~regrow.progress.Step` events; the plan's ``timings``
        say where the time went. See :mod:`regrow.planning`.

        A stored plan with actions is recorded as an experiment (``catalog.experiments``)
        with its rationale, expected gain and cost, ``tags`` and ``contingency`` (default:
        keep, or roll back to, ``ref``); see :mod:`regrow.experiments`. ``why`` are the
        reasons the plan was asked for (``regrow watch``'s decision), first in its rationale.
        """
        from regrow.planning import make_plan

        self.require("operator", "plan")
        policy = self._policy(policy)
        return make_plan(
            self._services(), ref, window, policy=policy, record=record, progress=progress,
            tags=tags, contingency=contingency, why=list(why),
        )  # fmt: skip

    def apply(
        self,
        ref: str,
        window: SnapshotRecord | str,
        actions: Iterable[Action],
        *,
        approve: bool = False,
        policy: Policy | str | os.PathLike[str] | None = None,
        seed: int | None = None,
        workers: int | None = None,
        backend: ExecutorBackend | None = None,
        progress: Callable[[Any], None] | None = None,
        tags: Iterable[str] = (),
        contingency: str | None = None,
    ) -> PlanRun:
        """Run actions chosen by hand on version ``ref`` with ``window``'s rows.

        For example fine-tune chosen blocks of a torch member::

            ws.apply("digits:v1", "recent", [Finetune("net", blocks=("head",),
                                                      options={"lr": 1e-3, "epochs": 10})])

        The actions are checked against the policy, costed, stored as a plan and run like
        any plan (approval rules included). The plan is recorded as a ``manual`` experiment
        with ``tags`` and ``contingency``; the run records its candidate there.
        """
        from regrow.plan_runs import manual_plan

        self.require("operator", "apply actions")
        policy = self._policy(policy)
        plan = manual_plan(
            self._services(), ref, window, list(actions), policy=policy, tags=tags,
            contingency=contingency,
        )  # fmt: skip
        return self.run_plan(
            plan, approve=approve, seed=seed, workers=workers, backend=backend,
            progress=progress,
        )  # fmt: skip

    def run_plan(
        self,
        plan: Plan | str,
        *,
        approve: bool = False,
        seed: int | None = None,
        workers: int | None = None,
        backend: ExecutorBackend | None = None,
        progress: Callable[[Any], None] | None = None,
    ) -> PlanRun:
        """Run a stored plan (a :class:`~regrow.plan.plan.Plan`, its id or an id prefix).

        The workspace's policy governs, whatever policy the plan was made under: actions its
        ``autonomy`` reserves for humans, and a plan estimated over any of its ``budgets``
        (CPU seconds, GPU seconds, money at the ``[costs]`` prices of the backend; see
        :mod:`regrow.run.budget`), are refused before anything is written, with the numbers,
        unless an approver runs it with ``approve``; so is a plan its own policy marked as
        needing approval (the stricter of the two holds). The budgets hold while it runs too
        (those an approver took it over are lifted): a run over one stops, and running the
        plan again resumes it.

        ``progress`` receives :class:`~regrow.progress.Step` events for the steps before the
        run and the run's :class:`~regrow.run.runner.RunEvent` s; the result's ``timings``
        say where the time went.
        """
        from regrow.plan.plan import Plan
        from regrow.plan_runs import run_plan
        from regrow.run.budget import RunBudget, estimate_plan

        self.require("operator", "run a plan")
        stored = (
            plan if isinstance(plan, Plan) else Plan.from_dict(self.catalog.get_plan(plan).body)
        )
        # Whatever policy the plan was made under, running it follows the workspace's.
        governing = self.policy()
        gated = [a.describe() for a in stored.actions if governing.needs_approval(a.kind)]
        where = backend.name if backend is not None else "local"
        estimate = estimate_plan(self.catalog, stored, self.config.costs, where)
        budget = RunBudget.of(governing.budgets, self.config.costs, where)
        over = budget.crossed(estimate)
        if stored.needs_approval or gated or over:
            if not approve:
                why = []
                if gated:
                    why.append(f"for {', '.join(gated)} (the workspace's policy {governing.id})")
                if over:
                    why.append(f"(estimated {' and '.join(map(str, over))})")
                if not why:  # the policy the plan was made under asks for it: say why
                    why.append(self._own_policy_asks(stored, estimate, where))
                raise PlanError(
                    f"plan {stored.id[:12]} needs approval " + " ".join(why),
                    hint=f"review it with `regrow plans show {stored.id[:12]}`, then run it "
                    "with --approve (approver role)"
                    + (", or raise the budget in the workspace's policy" if over else ""),
                )
            self.require("approver", "approve a plan's actions (--approve)")
        return run_plan(
            self._services(),
            plan,
            approve=approve,
            seed=seed,
            workers=workers,
            backend=backend,
            progress=progress,
            # The budgets hold while it runs too, but those an approver took it over.
            cpu_budget=budget.lifted(over),
            estimate=estimate,
            profile=self.config.costs,
        )

    def _own_policy_asks(self, plan: Plan, estimate: PlanEstimate, where: str) -> str:
        """Why the policy ``plan`` was made under (a ``--policy`` file, say) needs approval
        for it: the actions its ``autonomy`` reserves for humans, the budgets the estimate
        crosses, or the recipe budgets the plan's rationale names."""
        from regrow.plan.policy import Policy
        from regrow.run.budget import RunBudget

        try:
            own = Policy.from_dict(dict(plan.policy))
        except RegrowError:  # a policy of an older regrow: no more to say
            return "(under the policy it was made with)"
        made_under = f"the policy it was made with, {own.id}"
        gated = [a.describe() for a in plan.actions if own.needs_approval(a.kind)]
        over = RunBudget.of(own.budgets, self.config.costs, where).crossed(estimate)
        why = [f"for {', '.join(gated)}"] if gated else []
        why += [f"estimated {' and '.join(map(str, over))}"] if over else []
        if not why:
            why = [a.describe() for a in plan.actions if a.approval]
            why = [f"for {', '.join(why)} (over its recipe's budget)"] if why else []
        return f"({'; '.join(why) or 'as it says'} under {made_under})"

    # -- evaluating and promoting -------------------------------------------------------------

    def evaluate(
        self,
        candidate: str,
        snapshot: SnapshotRecord | str,
        *,
        baseline: str | None = None,
        metric: str | None = None,
        policy: Policy | str | os.PathLike[str] | None = None,
        gates: Iterable[Gate] | None = None,
        progress: ProgressFn | None = None,
    ) -> tuple[EvaluationRecord, Comparison]:
        """Compare ``candidate`` with ``baseline`` on ``snapshot`` and its slices, run the
        gates of ``policy`` (a :class:`~regrow.Policy`, a policy file, or None: the workspace's
        policy, :meth:`policy`) and record the evaluation with every gate's result and an HTML
        report. Only an evaluation under the workspace's policy's gates counts for a promotion
        (under its policy, or another whose ``gates`` section is the same).

        ``gates`` runs these gate objects instead of the policy's ``gates.checks`` (the rest
        of the section still applies); ``metric`` overrides ``gates.metric``. The verdict is
        ``blessed`` only when every gate passed. Recording needs the operator role; a refused
        evaluation is audited (``evaluation.refused``) and records nothing. ``progress``
        receives :class:`~regrow.progress.Step` events; the comparison's ``timings`` say
        where the time went. See :mod:`regrow.evaluating` and :mod:`regrow.evaluate.gates`.
        """
        from regrow.evaluating import evaluate

        self.require("operator", "record an evaluation")
        return evaluate(
            self._services(), candidate, snapshot, baseline=baseline, metric=metric,
            policy=self.policy() if policy is None else policy,
            gates=None if gates is None else list(gates), progress=progress,
        )  # fmt: skip

    # -- served predictions ---------------------------------------------------------------------

    def window(
        self, system: str, *, since: Any, until: Any = None, labelled: bool = False
    ) -> SnapshotRecord:
        """Store what ``system`` served in ``[since, until)`` (from the prediction log) as
        snapshot ``<system>-served``, a window for :meth:`monitor`, :meth:`plan` and
        :meth:`evaluate`; ``labelled``: only rows with a label, in the target column. Times
        are datetimes, ISO strings or spans ago (``24h``, ``7d``). See :mod:`regrow.logged`.
        """
        self.require("operator", "store a window of served predictions")
        from regrow.logged import logged_window

        return logged_window(self._services(), system, since, until, labelled)

    def skew(self, ref: str, *, since: Any, until: Any = None, fdr: float = 0.05) -> SkewReport:
        """Training/serving skew of version ``ref``: the rows it served itself in ``[since,
        until)`` (the prediction log) against the snapshot it was trained on, feature by
        feature, with the drift monitor's calibrated tests; nothing is stored. Times are
        datetimes, ISO strings or spans ago (``24h``, ``7d``). See :mod:`regrow.skew`."""
        self.require("viewer", "check training/serving skew")
        from regrow.skew import check_skew

        return check_skew(self._services(), ref, since=since, until=until, fdr=fdr)

    def feedback(self, system: str, labels: Any) -> int:
        """Store labels of rows ``system`` served, by request id (``{"r1": 1}``, ``[("r1",
        0, 1)]``...; see :func:`regrow.logged.feedback`); one audit event per call."""
        self.require("operator", "send feedback labels")
        from regrow.logged import feedback

        return feedback(self.catalog, system, labels)

    def refresh(
        self,
        ref: str,
        window: Any,
        *,
        add_member: str | None = None,
        dry_run: bool = False,
        reason: str = "",
        policy: Policy | str | os.PathLike[str] | None = None,
    ) -> EnsembleRefresh:
        """Refresh the weights of ``ref``'s ensemble on labelled ``window`` (Hedge, fixed share,
        retirement and re-admission), as a plan to run; see :mod:`regrow.refreshing`."""
        from regrow.plan.policy import Policy, load_policy
        from regrow.refreshing import refresh_ensemble

        if policy is None or not dry_run:
            chosen = None if policy is None else self._policy(policy)
        else:  # a dry run writes nothing: the policy is read, not registered
            chosen = policy if isinstance(policy, Policy) else load_policy(policy)
        return refresh_ensemble(
            self, ref, window, add_member=add_member, dry_run=dry_run, reason=reason,
            policy=chosen,
        )  # fmt: skip

    # -- upkeep -------------------------------------------------------------------------------

    def doctor(
        self,
        *,
        quick: bool = False,
        repair: bool = False,
        grace: str | float | timedelta = DEFAULT_GRACE,
        stuck_after: str | float | timedelta = DEFAULT_STUCK_AFTER,
    ) -> DoctorReport:
        """Check every artifact, run, alias and the audit chain; ``repair`` fixes what it can.

        Lost component artifacts are refitted under their own fingerprint, unreferenced files
        older than ``grace`` deleted, runs ``running`` for longer than ``stuck_after`` marked
        abandoned; each repair is audited. See :mod:`regrow.doctor`.
        """
        from regrow.doctor import doctor

        self.require("admin" if repair else "viewer", "repair" if repair else "check")
        return doctor(
            self.catalog,
            self.store,
            quick=quick,
            repair=repair,
            grace=grace,
            stuck_after=stuck_after,
        )


def _schema_of(spec: Mapping[str, Any]) -> Schema | None:
    """The schema a stored spec describes; None for one regrow did not write."""
    from regrow.data.schema import Schema

    try:
        return Schema.from_dict(spec)
    except SchemaError:
        return None


def _reviewed(
    catalog: Catalog,
    prepared: PreparedSnapshot,
    like: Schema | None,
    previous: SchemaRecord | None,
    name: str,
    target: str | None,
    allow: bool,
) -> tuple[Review, SchemaRecord | None]:
    """:func:`~regrow.data.snapshot_safety.review_snapshot` of ``prepared`` against the
    name's ``previous`` schema; when that refuses it, against the schema before a one-off
    allowed change (:func:`_before_allowed_changes`), which it is then returned with: rows
    back in that shape are no change. Raises the refusal of the last schema it was checked
    against."""
    from regrow.data.snapshot_safety import review_snapshot

    version = previous.version if previous is not None and like is not None else None
    try:
        review = review_snapshot(prepared, like, version, name=name, target=target, allow=allow)
        return review, None
    except IncompatibleSchema:
        back = _before_allowed_changes(catalog, name)
        if previous is None or back is None or (shape := _schema_of(back.spec)) is None:
            raise
    review = review_snapshot(prepared, shape, back.version, name=name, target=target, allow=False)
    said = f"back to the shape of schema v{back.version}, before the change allowed at v"
    return replace(review, warnings=(f"{said}{previous.version}", *review.warnings)), back


def _before_allowed_changes(catalog: Catalog, name: str) -> SchemaRecord | None:
    """The schema of ``name``'s newest snapshot stored without an allowed incompatible change,
    when the snapshots after it were all stored with one (a window with a stray value or a
    renamed column, stored with ``allow_schema_change``); None when the newest snapshot was
    stored without one. Rows back in that shape are no change: without this, the clean
    windows after a one-off were refused as breaking. A change followed by a snapshot in the
    new shape stored without ``allow_schema_change`` is the name's shape from then on."""
    allowed = {
        e.payload.get("snapshot")
        for e in catalog.audit_events(subject=f"schema:{name}", limit=200)
        if e.action == "schema.change"
    }
    newest_first = sorted(catalog.list_snapshots(name), key=lambda r: r.created_at, reverse=True)
    if not newest_first or newest_first[0].id not in allowed:
        return None
    for snap in newest_first:
        if snap.id not in allowed:
            return catalog.snapshot_schema(snap.id)
    return None


def _classified(ws: Workspace, name: str, schema: Schema) -> tuple[str, ...]:
    """Every change from ``name``'s newest registered schema (each one, when the policy's
    ``contracts.transitive``) to ``schema`` that is not safe, with its class under the policy's
    mode (:mod:`regrow.data.compat`): what models trained on the name's data need."""
    from regrow.data.compat import classify_history
    from regrow.data.schema import Schema as Registered

    section = ws.policy().contracts
    history = ws.catalog.schema_versions(name)
    if not history:
        return ()
    results = classify_history(
        [Registered.from_dict(r.spec) for r in history],
        schema,
        section.compatibility,
        transitive=section.transitive,
    )
    lines = []
    for record, result in zip(history[-len(results) :], results, strict=True):
        for c in result.changes:
            if c.cls != "safe":
                via = f" ({c.adapter})" if c.adapter else ""
                lines.append(
                    f"{result.mode} against schema v{record.version}: {c.cls} {c.detail}{via}"
                )
    return tuple(lines)


def _emptied_first(
    catalog: Catalog, prepared: PreparedSnapshot, name: str, lines: tuple[str, ...]
) -> tuple[str, ...]:
    """``lines`` with a column that is entirely null though one of ``name``'s last ten
    snapshots had values in it said first, as a likely broken feed, in place of its count of
    nulls (:func:`~regrow.data.snapshot_safety.emptied_columns`)."""
    from regrow.data.snapshot_safety import emptied_columns

    table = prepared.table
    if not any(table.column(c).null_count == table.num_rows for c in table.column_names):
        return lines

    def earlier() -> Iterable[tuple[str, dict[str, Any]]]:
        for snap in catalog.list_snapshots(name)[:10]:
            profile = catalog.find_profile(snap.id)
            if profile is not None:
                yield f"snapshot {snap.id[:12]} of {name!r}", profile

    emptied = emptied_columns(table, earlier())
    counts = {n.message for n in prepared.notes if n.kind == "nulls" and n.column in emptied}
    return (*emptied.values(), *(line for line in lines if line not in counts))


def _check_training_data(
    catalog: Catalog,
    store: ArtifactStore,
    system: System,
    snap: SnapshotRecord,
    fitted: Iterable[str],
) -> str | None:
    """Refuse ``snap`` when the ``fitted`` components would read numbers stored as text
    (:func:`~regrow.data.training_checks.check_text_columns`); the warning line when it has
    few rows to fit them on (:func:`~regrow.data.training_checks.few_rows`), else None.

    Numeric before means numeric in an earlier schema of the snapshot's name, or in the
    snapshot an earlier version of the system was trained on."""
    from regrow.data.snapshot import read_parquet
    from regrow.data.training_checks import (
        NUMERIC_DTYPES,
        TEXT_DTYPES,
        check_text_columns,
        few_rows,
    )

    names = [n for n in fitted if system[n].kind in ("transform", "member")]
    readers: dict[str, list[str]] = {}
    for n in names:
        own = {a.column for a in getattr(system[n], "adapters", ())}
        for column in system.direct_columns(n):
            if column not in own:  # a component's own adapter says how it reads the column
                readers.setdefault(column, []).append(n)
    record = catalog.snapshot_schema(snap.id)
    dtypes = {c.get("name"): c.get("dtype") for c in record.spec.get("columns", ())}
    label = f"snapshot {snap.name!r} ({snap.id[:12]})"
    if any(dtypes.get(c) in TEXT_DTYPES for c in readers):
        earlier = [
            (f"schema v{r.version} of {r.name!r}", r.spec)
            for r in catalog.schema_versions(record.name)
            if r.version < record.version
        ]
        seen = {snap.id}
        for version in catalog.list_system_versions(system.name):  # newest first
            if version.snapshot_id is None or version.snapshot_id in seen or len(seen) > 20:
                continue
            seen.add(version.snapshot_id)
            with contextlib.suppress(LookupError):
                trained = catalog.snapshot_schema(version.snapshot_id)
                earlier.append((f"the training snapshot of {version.ref}", trained.spec))
        numeric_before: dict[str, str] = {}
        for where, spec in earlier:
            for c in spec.get("columns", ()):
                dtype, column = c.get("dtype"), c.get("name")
                if dtype in NUMERIC_DTYPES and column not in numeric_before:
                    numeric_before[column] = f"{dtype} in {where}"
        notes = (catalog.find_profile(snap.id) or {}).get("notes") or []
        flagged = {n.get("column") for n in notes if n.get("kind") == "not_numeric"}
        data = functools.cache(lambda: store.get(snap.artifact))  # read once, if at all
        check_text_columns(
            lambda column: read_parquet(data(), columns=[column]).column(column),
            dtypes,
            readers,
            numeric_before=numeric_before,
            flagged={f for f in flagged if isinstance(f, str)},
            snapshot=label,
        )
    members = {n: len(system.raw_columns(n)) for n in names if system[n].kind == "member"}
    return few_rows(snap.rows, members or {n: len(system.raw_columns(n)) for n in names}, label)


def _quality_warning(name: str, lines: tuple[str, ...]) -> DataQualityWarning:
    shown = "".join(f"\n  - {line}" for line in lines)
    return DataQualityWarning(f"snapshot {name!r}:{shown}", notes=lines)


def _key_of(data: bytes) -> str:
    from regrow._hashing import sha256_hex

    return sha256_hex(data)
