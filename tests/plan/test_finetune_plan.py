"""The planner's finetune action: a torch member chosen for an update is fine-tuned on the
blocks its diagnostic points at, and the run trains only those blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from lightgbm import LGBMClassifier  # noqa: E402

from regrow import Ensemble, Member, System, Workspace  # noqa: E402
from regrow.components.torch import MLP, TorchClassifier  # noqa: E402
from regrow.plan.policy import Policy  # noqa: E402


def _data(rows: int, seed: int, flipped: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(rows, 4)), columns=["n1", "n2", "g1", "g2"])
    net_part = 2.0 * df.n1 - 1.5 * df.n2
    if flipped:  # the labels' relation to the net's inputs changes sign and shape
        net_part = 2.5 * df.n2 - 2.0 * np.abs(df.n1) + 1.0
    logit = net_part + 1.0 * df.g1 * (df.g2 > 0)
    df["y"] = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def _system() -> System:
    net = TorchClassifier(MLP(hidden=(16, 8)), epochs=15, lr=0.01, random_state=0)
    return System(
        "mixed",
        target="y",
        components=[
            Member("net", net, inputs=["n1", "n2"]),
            Member(
                "trees", LGBMClassifier(n_estimators=40, verbose=-1, n_jobs=1), inputs=["g1", "g2"]
            ),
            Ensemble("combine", weights={"net": 1.0, "trees": 1.0}, method="stack"),
        ],
    )


def test_the_planner_finetunes_the_torch_member_on_the_blocks_it_chose(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    with Workspace.init(tmp_path) as ws:
        v1 = ws.train(_system(), ws.snapshot(_data(2000, 0, False), name="old")).version.ref
        window = ws.snapshot(_data(1200, 1, True), name="flipped")
        plan = ws.plan(v1, window)
        kinds = [(a.kind, a.component) for a in plan.actions]
        assert kinds == [("finetune", "net"), ("reweight", "combine")]
        finetune = plan.actions[0]
        blocks = finetune.params()["blocks"]
        assert blocks
        assert set(blocks) <= {"layer0", "layer1", "head"}
        assert "grad_ratio" in finetune.reason
        ran = ws.run_plan(plan)
        assert ran.result.trained == ["net", "combine"]
        # the run's table says what was done to the net, not only that its data changed
        assert ran.result.components["net"].causes[0] == f"finetune of {', '.join(blocks)}"
        old_net = ws.load(v1).components["net"].estimator
        new_net = ws.load(ran.result.version.ref).components["net"].estimator
        old_w = dict(old_net.module_.named_parameters())
        for name, param in new_net.module_.named_parameters():
            changed = not torch.equal(param, old_w[name])
            assert changed == (new_net.block_of(name) in blocks), name
        test = _data(1500, 2, True)
        acc = lambda ref: float((ws.load(ref).predict(test) == test.y).mean())  # noqa: E731
        assert acc(ran.result.version.ref) > acc(v1) + 0.15

        refit_policy = Policy.from_dict({"planning": {"neural": "refit"}})
        refit = ws.plan(v1, window, policy=refit_policy, record=False)
        assert refit.actions[0].kind == "refit"


def test_a_user_fine_tunes_chosen_blocks_by_hand(tmp_path: Path) -> None:
    from regrow.errors import PlanError
    from regrow.plan.actions import Finetune

    torch.set_num_threads(1)
    with Workspace.init(tmp_path) as ws:
        v1 = ws.train(_system(), ws.snapshot(_data(1000, 0, False), name="old")).version.ref
        ws.snapshot(_data(600, 1, True), name="new")
        ran = ws.apply(
            v1, "new", [Finetune("net", blocks=("head",), options={"lr": 0.01, "epochs": 5})]
        )
        assert ran.result.trained == ["net", "combine"]
        record = ws.catalog.get_plan(ran.record.id)
        assert record.status == "executed"
        assert record.body["rationale"] == ["written by hand"]
        new_net = ws.load(ran.result.version.ref).components["net"].estimator
        old = dict(ws.load(v1).components["net"].estimator.module_.named_parameters())
        for name, param in new_net.module_.named_parameters():
            assert torch.equal(param, old[name]) == (new_net.block_of(name) != "head"), name
        with pytest.raises(PlanError, match="outside the policy's bounds"):
            ws.apply(v1, "new", [Finetune("net", blocks=("head",), options={"lr": 5.0})])
        with pytest.raises(PlanError, match="not a torch member"):
            ws.apply(v1, "new", [Finetune("trees", blocks=("head",))])


def test_a_system_of_one_network_is_fine_tuned_not_retrained_in_full(tmp_path: Path) -> None:
    """Its one member needing an update is not 'broad' drift (escalation.max_degraded_share
    counts members): the plan fine-tunes the blocks the probes chose."""
    torch.set_num_threads(1)
    net = TorchClassifier(MLP(hidden=(16, 8)), epochs=15, lr=0.01, random_state=0)
    system = System("one", target="y", components=[Member("net", net, inputs=["n1", "n2"])])
    with Workspace.init(tmp_path) as ws:
        v1 = ws.train(system, ws.snapshot(_data(2000, 0, False), name="old")).version.ref
        plan = ws.plan(v1, ws.snapshot(_data(1200, 1, True), name="flipped"), record=False)
        assert not plan.escalated
        assert [(a.kind, a.component) for a in plan.actions] == [("finetune", "net")]
        assert not any("max_degraded" in line for line in plan.rationale)
        moved = _data(1200, 3, True)
        moved[["n1", "n2"]] += 1.5  # every input drifted: broad, on a labelled window
        broad = ws.plan(v1, ws.snapshot(moved, name="moved"), record=False)
        assert not broad.escalated
        assert [a.kind for a in broad.actions] == ["finetune"]
        assert any("but not escalated: the system has one member" in r for r in broad.rationale)
