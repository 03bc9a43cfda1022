"""The demo's last step: upstream renames a column, and an adapter bridges it.

The next window arrives with ``support_calls`` renamed to ``calls``. regrow proposes the
adapter from the two schemas (:func:`regrow.data.propose.propose`), makes a version of the
champion that reads its rows through it (:meth:`~regrow.Workspace.adapt`: nothing re-fitted),
monitors and plans on the renamed window, and serves renamed rows over the Open Inference
Protocol with the champion's own predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from regrow.workspace import Workspace

__all__ = ["RENAMED", "renamed_column"]

#: The column upstream renames, and its new name.
RENAMED = ("support_calls", "calls")


def renamed_column(
    ws: Workspace, champion: str, rows: pd.DataFrame, say: Callable[[str], None]
) -> dict[str, Any]:
    """Bridge a renamed column for ``champion`` and use the renamed ``rows`` (labelled) in each
    step; what happened, for the demo's summary."""
    from regrow._demo_serving import _call, _values
    from regrow.config import ServeSettings
    from regrow.data.propose import propose
    from regrow.data.schema import Schema
    from regrow.serve.app import create_app
    from regrow.serve.local import running

    old, new = RENAMED
    renamed = rows.rename(columns={old: new})
    version = ws.catalog.get_system_version(champion)
    system = ws.system(version.ref)
    trained_on = Schema.from_dict(ws.catalog.snapshot_schema(version.snapshot_id or "").spec)
    proposal = propose(trained_on, Schema.infer(renamed), reads=system.columns(), mode="backward")
    say(
        f"upstream renamed {old!r} to {new!r}; `regrow adapters propose` bridges it with: "
        + "; ".join(" ".join(line.split()) for line in proposal.adapters.describe())
    )
    bridged = ws.adapt(version.ref, proposal.adapters, note=f"demo: {old} renamed {new}")
    ref = bridged.version.ref
    say(
        f"{ref}: {version.ref} reading its rows through the adapter; "
        f"{len(bridged.run.summary['trained'])} components re-fitted, "
        f"{len(bridged.run.summary['reused'])} reused"
    )
    monitored = ws.monitor(ref, renamed)
    missing = [
        f.column
        for f in (monitored.quality.findings if monitored.quality else ())
        if f.kind == "missing"
    ]
    say(
        f"monitored {ref} on {len(renamed):,} renamed rows: drift in "
        f"{monitored.drifted_columns or 'no column'}, missing columns {missing or 'none'}"
    )
    plan = ws.plan(ref, renamed)
    say(f"planned on them: {[a.describe() for a in plan.actions] or 'nothing to do'}")

    inputs = renamed.head(50)
    with running(create_app(ws, ServeSettings(log_predictions=False), models=[ref])) as url:
        meta = _call(f"{url}/v2/models/churn")
        # The client sends the column under its new name; the metadata lists the model's names.
        tensors = []
        for spec in meta["inputs"]:
            name = new if spec["name"] == old else spec["name"]
            tensors.append(
                {
                    "name": name,
                    "shape": [len(inputs)],
                    "datatype": spec["datatype"],
                    "data": _values(inputs[name], spec["datatype"]),
                }
            )
        answer = _call(f"{url}/v2/models/churn/infer", {"inputs": tensors})
    served = next(o for o in answer["outputs"] if o["name"] == "probabilities")
    original = rows.drop(columns=["ts", system.target], errors="ignore").head(50)
    expected = ws.load(version.ref).predict_proba(original)
    same = bool(np.allclose(np.reshape(served["data"], expected.shape), expected, atol=1e-12))
    say(
        f"served {len(inputs)} renamed rows from {ref}: "
        + ("the same predictions as " if same else "predictions differ from ")
        + f"{version.ref} on the original rows"
    )
    return {
        "version": ref,
        "adapters": proposal.adapters.to_list(),
        "refitted": list(bridged.run.summary["trained"]),
        "drifted": monitored.drifted_columns,
        "missing": missing,
        "plan": [a.describe() for a in plan.actions],
        "served_rows": len(inputs),
        "same_predictions": same,
    }
