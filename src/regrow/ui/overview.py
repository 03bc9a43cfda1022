"""What the overview and the system pages show, as plain JSON-ready dicts.

Each function reads through the :class:`~regrow.Workspace` and the catalog functions the CLI
uses (``regrow status``, ``versions``, ``aliases``, ``rollout status``, ``watch --status``,
``monitor list``, ``costs``), so the dashboard says what the terminal says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from regrow._hashing import jsonable

if TYPE_CHECKING:
    from regrow.catalog.records import SystemVersionRecord
    from regrow.catalog.watches import WatchCycleRecord, WatchLeaseRecord
    from regrow.workspace import Workspace

__all__ = ["overview", "system_graph"]

#: How many runs and monitor reports the overview lists per system.
RECENT = 8


def overview(ws: Workspace) -> dict[str, Any]:
    """Every system with its aliases, versions, rollouts under way, watcher, latest monitor
    verdicts and recent runs with their cost (``regrow costs``)."""
    from regrow.costs import cost_report
    from regrow.rollout import machine

    catalog = ws.catalog
    leases = {lease.system: lease for lease in catalog.watches.leases()}
    systems = []
    for name in catalog.list_systems():
        versions = catalog.list_system_versions(name)
        refs = {v.id: v.ref for v in versions}
        aliases = catalog.list_aliases(name)
        reports = [r for r in catalog.list_monitor_reports(limit=200) if r.version_id in refs]
        costs = cost_report(catalog, name, profile=ws.config.costs).to_dict()
        lease = leases.get(name)
        cycles = catalog.watches.cycles(name, limit=1)
        systems.append(
            {
                "name": name,
                "versions": [_version(v, aliases) for v in versions],
                "aliases": [
                    {
                        "alias": a.name,
                        "version": refs.get(a.version_id, a.version_id[:12]),
                        "revision": a.revision,
                        "updated_at": a.updated_at,
                    }
                    for a in aliases
                ],
                "rollouts": [_rollout(r, refs) for r in machine.status(ws, system=name)],
                "watcher": None
                if lease is None
                else {
                    "holder": lease.holder,
                    "expires_at": lease.expires_at,
                    "describe": lease.describe(),
                },
                "last_cycle": _cycle(cycles[0], lease) if cycles else None,
                "monitor": [
                    {
                        "id": r.id,
                        "version": refs[r.version_id],
                        "created_at": r.created_at,
                        "drifted": list(r.summary.get("drifted") or []),
                        "alerts": r.summary.get("alerts"),
                        "candidates": list(r.summary.get("candidates") or []),
                        "rows": r.summary.get("rows"),
                    }
                    for r in reports[:RECENT]
                ],
                "runs": costs["runs"][:RECENT],
                "currency": costs.get("currency"),
            }
        )
    return jsonable({"home": str(ws.home), "systems": systems})  # type: ignore[no-any-return]


def _version(v: SystemVersionRecord, aliases: list[Any]) -> dict[str, Any]:
    return {
        "version": v.ref,
        "id": v.id,
        "parent": v.parent_id,
        "note": v.note,
        "created_at": v.created_at,
        "aliases": [a.name for a in aliases if a.version_id == v.id],
    }


def _rollout(r: Any, refs: dict[str, str]) -> dict[str, Any]:
    return {
        "id": r.id,
        "alias": r.alias,
        "mode": r.mode,
        "state": r.state,
        "step": r.step + 1,
        "steps": len(r.steps),
        "share": r.share,
        "stable": refs.get(r.stable_id, r.stable_id[:12]),
        "candidate": refs.get(r.candidate_id, r.candidate_id[:12]),
    }


def system_graph(ws: Workspace, ref: str) -> dict[str, Any]:
    """Version ``ref``'s components as a graph (transforms -> members -> ensemble): each with
    its kind, inputs, component version, fresh or stale with the causes (``regrow status``),
    and the ensemble's member weights."""
    catalog = ws.catalog
    version = catalog.get_system_version(ref)
    status = {s.name: s for s in ws.status(version.ref)}
    records = catalog.get_component_versions(list(version.manifest.values()))
    spec = version.spec.get("components") or {}
    order = list(version.spec.get("order") or spec)
    depth: dict[str, int] = {}
    for name in order:
        ups = [i for i in (spec.get(name) or {}).get("inputs") or () if i in spec]
        depth[name] = 1 + max((depth.get(u, 0) for u in ups), default=-1)
    components = []
    for name in order:
        s = status.get(name)
        record = records.get(version.manifest.get(name, ""))
        components.append(
            {
                "name": name,
                "kind": (spec.get(name) or {}).get("kind"),
                "class": (spec.get(name) or {}).get("class"),
                "inputs": list((spec.get(name) or {}).get("inputs") or ()),
                "upstream": [i for i in (spec.get(name) or {}).get("inputs") or () if i in spec],
                "layer": depth.get(name, 0),
                "version_id": version.manifest.get(name),
                "fingerprint": record.fingerprint if record else None,
                "trained_at": record.created_at if record else None,
                "run": record.run_id if record else None,
                "new": bool(record and version.run_id and record.run_id == version.run_id),
                "fresh": s.fresh if s else None,
                "causes": list(s.causes) if s else [],
                "details": s.details if s else {},
                "weights": (record.info or {}).get("weights") if record else None,
            }
        )
    siblings = [v.ref for v in catalog.list_system_versions(version.system)]
    return jsonable(  # type: ignore[no-any-return]
        {"version": version.ref, "id": version.id, "system": version.system,
         "note": version.note, "created_at": version.created_at, "versions": siblings,
         "components": components,
         "weights": next((c["weights"] for c in components if c["weights"]), None)}
    )  # fmt: skip


def _cycle(cycle: WatchCycleRecord, lease: WatchLeaseRecord | None) -> dict[str, Any]:
    """The newest watch cycle as ``regrow watch --status`` shows it: ``shown`` the state it
    is in (a cycle left running with no watcher is ``interrupted``, resumed by the next
    one), ``why`` how it ended or what resumes it."""
    shown, why = cycle.shown(lease is not None and lease.live)
    return {**cycle.to_dict(), "shown": shown, "why": why}
