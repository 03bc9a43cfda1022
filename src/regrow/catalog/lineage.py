"""Lineage: the catalog read backwards from one system version.

For a version: its parent chain, the run that made it (environment, seeds, parameters), the
snapshots it was trained on, and for every component version its fingerprint and whether it
was trained by this version's run (with the causes) or reused from an earlier one.

A component built by a plan's run (the run's ``params["plan"]``) also shows the **recipe** of
the plan action that built it (``recipe``: its ``name@version``, the parameters it used, the
action and the plan; :mod:`regrow.recipes`), whether this version's run built it or an
earlier one. Components built by a training run, by a plan stored before recipes, or refitted
by a run without an action naming them (a stack relearned around a member) have none.
"""

from __future__ import annotations

from typing import Any

from regrow.catalog.catalog import Catalog
from regrow.catalog.records import RunRecord, SystemVersionRecord
from regrow.errors import NotFound

__all__ = ["adapters_report", "lineage_report"]


def lineage_report(
    catalog: Catalog, version: SystemVersionRecord, *, depth: int | None = None
) -> dict[str, Any]:
    """A JSON-friendly lineage report of ``version`` (parents up to ``depth`` levels)."""
    chain = catalog.lineage(version.id, depth=depth)
    run = catalog.get_run(version.run_id) if version.run_id else None
    causes: dict[str, list[str]] = (run.summary.get("causes", {}) if run else {}) or {}
    records = catalog.get_component_versions(list(version.manifest.values()))
    runs_by_id = {run.id: run} if run else {}
    components = []
    snapshot_ids: set[str] = set()
    own = {  # each component's own adapters, as stored with the version
        n: c["adapters"]
        for n, c in (version.spec.get("components") or {}).items()
        if c.get("adapters")
    }
    built: dict[str, dict[str, dict[str, Any]]] = {}  # run id -> component -> recipe
    for name, vid in version.manifest.items():
        rec = records[vid]
        if rec.snapshot_id:
            snapshot_ids.add(rec.snapshot_id)
        trained_here = run is not None and rec.run_id == run.id
        origin: dict[str, Any] = {"run": rec.run_id}
        if not trained_here and rec.run_id:
            if rec.run_id not in runs_by_id:
                runs_by_id[rec.run_id] = catalog.get_run(rec.run_id)
            origin["version"] = runs_by_id[rec.run_id].version_id
        if rec.run_id and rec.run_id not in built:
            built[rec.run_id] = _built_by(catalog, runs_by_id.get(rec.run_id))
        recipe = built.get(rec.run_id or "", {})
        components.append(
            {
                "name": name,
                "kind": rec.kind,
                "version_id": rec.id,
                "fingerprint": rec.fingerprint,
                "action": "trained" if trained_here else "reused",
                "why": causes.get(name) or ["fingerprint unchanged"],
                "snapshot": rec.snapshot_id,
                "seed": rec.seed,
                "train_seconds": rec.train_seconds,
                "origin": origin,
                "adapters": own.get(name, []),
                "recipe": recipe.get(name) or recipe.get("*"),
            }
        )
    adapters = adapters_report(version.spec)
    snapshots = []
    for sid in sorted(snapshot_ids):
        snap = catalog.get_snapshot(sid)
        snapshots.append({"id": snap.id, "name": snap.name, "rows": snap.rows})
    return {
        "version": version.ref,
        "id": version.id,
        "created_at": version.created_at.isoformat(),
        "note": version.note,
        "parents": [
            {"version": v.ref, "id": v.id, "created_at": v.created_at.isoformat()}
            for v in chain[1:]
        ],
        "run": None
        if run is None
        else {
            "id": run.id,
            "kind": run.kind,
            "status": run.status,
            "seed": run.seed,
            "params": run.params,
            "environment": run.environment,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        },
        "snapshots": snapshots,
        "components": components,
        "adapters": adapters,
    }


def _built_by(catalog: Catalog, run: RunRecord | None) -> dict[str, dict[str, Any]]:
    """Component name (``"*"``: every component, a full retrain) -> the recipe of the action
    of ``run``'s plan that built it; empty when the run ran no plan or its plan named none."""
    plan_id = (run.params or {}).get("plan") if run is not None else None
    if not plan_id:
        return {}
    try:
        body = catalog.get_plan(str(plan_id)).body
    except NotFound:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for action in body.get("actions") or []:
        if not action.get("recipe"):
            continue
        name = str(action.get("component"))
        if action.get("kind") == "add-member":
            name = str((action.get("params") or {}).get("new_name") or name)
        out[name] = {
            "ref": action["recipe"],
            "params": action.get("recipe_params") or {},
            "action": action.get("kind"),
            "plan": plan_id,
        }
    return out


def adapters_report(spec: dict[str, Any]) -> dict[str, Any] | None:
    """A version's boundary adapters (``spec`` is its stored spec), their digest, and the
    components (transforms included) that read each adapter's column; None without adapters."""
    from regrow._adapter_text import adapters_digest, describe_adapter

    adapters = spec.get("adapters") or []
    if not adapters:
        return None
    components = spec.get("components", {})
    readers: dict[str, list[str]] = {}
    for name, info in components.items():
        for col in info.get("inputs", []):
            if col not in components:
                readers.setdefault(col, []).append(name)
    return {
        "digest": adapters_digest(adapters),
        "adapters": [
            {
                **a,
                "describe": describe_adapter(a),
                "read_by": sorted(readers.get(a.get("column"), [])),
            }
            for a in adapters
        ],
    }
