"""The recipes that ship with regrow, one per thing regrow's actions really do.

============================= ============ ====================================================
recipe                        action       applies to
============================= ============ ====================================================
``sklearn-refit-window``      refit        any component (the scikit-learn estimator API)
``lightgbm-continue``         continue     LightGBM (``init_model``)
``xgboost-continue``          continue     XGBoost (``xgb_model``)
``sklearn-boosting-continue`` continue     HistGradientBoosting / GradientBoosting (warm start)
``lightgbm-leaf-refit``       leaf-refit   LightGBM (``Booster.refit``, ``decay_rate``)
``xgboost-leaf-refresh``      leaf-refit   XGBoost (``refresh`` updater, no decay)
``torch-surgical``            finetune     torch members: the blocks the diagnostic picks
``torch-head-on-cache``       finetune     torch members: the head, fitted on cached features
``ensemble-relearn``          reweight     the ensemble: weights learned on the window, or a
                                           stack refitted
``ensemble-hedge-refresh``    reweight     the ensemble, by ``regrow refresh`` (Hedge + fixed
                                           share; its parameters are the policy's ``ensemble``)
``add-member-copy``           add-member   a copy of a member, fitted on the window
``retire-member``             retire-member a member, removed with its weight
``full-retrain``              full-retrain every component
============================= ============ ====================================================

:data:`DEFAULTS` says which recipe the planner uses for an action on a family when the policy
names none (``planning.recipes``); the legacy keys ``planning.continue_extra`` and
``planning.leaf_refit_decay`` then set ``extra`` and ``decay_rate``.
"""

from __future__ import annotations

from typing import Any

from regrow.recipes.base import Param, Recipe

__all__ = ["BUILTINS", "DEFAULTS", "HEDGE_DOCS"]

_EXTRA = Param("extra", "int", 100, ge=1, doc="boosting rounds added, fitted on the window")


def _continue(name: str, family: tuple[str, ...], how: str) -> Recipe:
    return Recipe(
        name,
        1,
        "continue",
        applies_to=family,
        params=(_EXTRA,),
        doc=f"""Add boosting rounds fitted on the window on top of the member's trees ({how}).

The trees already there are kept: the new rounds fit what they now get wrong. Cheaper than a
refit when the change is small (a shift, a new region), and keeps what the old rows taught.
Under a concept change that reverses an effect, prefer a refit or a leaf refit.""",
    )


#: What each field of the policy's ``ensemble`` section does (a test checks every field has
#: one; defaults and bounds are read from the section itself).
HEDGE_DOCS: dict[str, str] = {
    "eta": "Hedge's learning rate on each member's loss in [0, 1]",
    "alpha": "fixed share: every weight ends at least alpha / members",
    "max_members": "most members the ensemble keeps",
    "reserved": "most total weight of members still in probation",
    "probation": "windows a newcomer is scored on before it leaves probation",
    "retire_weight": "a member under this weight ...",
    "retire_loss": "... or over this loss ...",
    "retire_after": "... this many windows in a row retires to the pool",
    "pool_size": "retired members kept, so a recurring concept can come back",
    "readmit_margin": "a pooled member returns when it beats the best by this much",
}


def _hedge_params() -> tuple[Param, ...]:
    """The policy's ``ensemble`` section as parameters: its defaults and bounds."""
    from regrow.plan.policy import EnsemblePolicy

    out = []
    for name, info in EnsemblePolicy.model_fields.items():
        default: Any = info.default
        kind = "int" if isinstance(default, int) and not isinstance(default, bool) else "float"
        bounds: dict[str, float] = {}
        for meta in info.metadata:
            for key in ("ge", "gt", "le", "lt"):
                if getattr(meta, key, None) is not None:
                    bounds[key] = float(getattr(meta, key))
        out.append(
            Param(name, kind, default, doc=HEDGE_DOCS.get(name, ""), **bounds)  # type: ignore[arg-type]
        )
    return tuple(out)


def _builtins() -> tuple[Recipe, ...]:
    return (
        Recipe(
            "sklearn-refit-window",
            1,
            "refit",
            applies_to=("*",),
            doc="""Fit the component again from scratch on the plan's training rows.

Every regrow component has the scikit-learn estimator API, so a refit is a clone of its
estimator fitted on the window (or on the window plus retained reference rows, under
``planning.data: recent+reference``), with a seed derived from the run's. The default for
any member, transform or learned ensemble the planner chooses to update.""",
        ),
        _continue("lightgbm-continue", ("lightgbm",), "LightGBM's init_model"),
        _continue("xgboost-continue", ("xgboost",), "XGBoost's xgb_model"),
        _continue(
            "sklearn-boosting-continue",
            ("sklearn-hgb", "sklearn-gb"),
            "scikit-learn's warm_start, early stopping off",
        ),
        Recipe(
            "lightgbm-leaf-refit",
            1,
            "leaf-refit",
            applies_to=("lightgbm",),
            params=(
                Param(
                    "decay_rate",
                    "float",
                    0.0,
                    ge=0,
                    lt=1,
                    doc="new leaf = decay_rate * old + (1 - decay_rate) * window's; "
                    "0 replaces them (concept drift)",
                ),
            ),
            doc="""Keep every tree's structure, re-estimate its leaf values on the window.

LightGBM's ``Booster.refit``: the splits the old rows found stay, the values they lead to
move to the window's. Cheap (no tree is grown) and right when the same features matter but
their effect changed. LightGBM's own ``decay_rate`` default 0.9 keeps 90% of the old values,
which is wrong under concept drift; this recipe's default is 0.""",
        ),
        Recipe(
            "xgboost-leaf-refresh",
            1,
            "leaf-refit",
            applies_to=("xgboost",),
            doc="""Keep every tree's structure, replace its leaf values with the window's.

XGBoost's ``refresh`` updater (``refresh_leaf``). It takes no decay: the old values are
replaced outright.""",
        ),
        Recipe(
            "torch-surgical",
            1,
            "finetune",
            applies_to=("torch",),
            params=(
                Param(
                    "blocks",
                    "list[str]",
                    "auto",
                    choices=("auto",),
                    doc="'auto': the blocks the gradient-norm-ratio diagnostic ranks and "
                    "short probes confirm (none: the member is left alone); or names",
                ),
                Param(
                    "lr",
                    "float",
                    None,
                    gt=0,
                    optional=True,
                    doc="learning rate; null: the probes' choice, within budgets.lr_min/lr_max",
                ),
                Param(
                    "epochs",
                    "int",
                    None,
                    ge=1,
                    optional=True,
                    doc="null: min(20, budgets.max_epochs)",
                ),
                Param(
                    "max_steps",
                    "int",
                    None,
                    ge=1,
                    optional=True,
                    doc="optimizer steps; null: budgets.max_steps",
                ),
                Param(
                    "l2sp",
                    "float",
                    0.0,
                    ge=0,
                    doc="pull trained weights toward their values before the update",
                ),
            ),
            doc="""Fine-tune only the blocks of a torch member that the drift touched.

Surgical fine-tuning: per block, the ratio of the gradient norm on recent rows to that on
reference rows ranks where the change lives; short probes on held-out rows confirm a block
(or decide no update is worth it). Only those blocks train, the rest stay frozen (BatchNorm
statistics included). See docs/finetune.md.""",
        ),
        Recipe(
            "torch-head-on-cache",
            1,
            "finetune",
            applies_to=("torch",),
            params=(
                Param(
                    "blocks",
                    "list[str]",
                    ["head"],
                    doc="the blocks to train (the member's top blocks)",
                ),
                Param("lr", "float", 1e-3, gt=0, doc="learning rate (within the policy's bounds)"),
                Param(
                    "epochs",
                    "int",
                    None,
                    ge=1,
                    optional=True,
                    doc="null: min(20, budgets.max_epochs)",
                ),
                Param(
                    "max_steps",
                    "int",
                    None,
                    ge=1,
                    optional=True,
                    doc="optimizer steps; null: budgets.max_steps",
                ),
                Param(
                    "head_cache",
                    "bool",
                    True,
                    doc="compute the frozen blocks' features once and fit the head on them",
                ),
            ),
            doc="""Retrain the head of a torch member on features cached from its frozen body.

No diagnostic runs: the named blocks train, everything below them is frozen, and the
frozen prefix of an ``nn.Sequential`` is computed once per row, so an epoch costs a pass
through the head alone. The cheapest update of a neural member, for a change in how
learned features map to the target.""",
        ),
        Recipe(
            "ensemble-relearn",
            1,
            "reweight",
            applies_to=("ensemble",),
            doc="""Relearn how the ensemble combines its members, on the window.

A mean or vote ensemble gets the non-negative weights the diagnostics learned on the
window's held-out rows; a stack is refitted on the window (on a held-out fifth of it,
predicted by a copy of each refitted member fitted on the rest; see docs/planning.md).""",
        ),
        Recipe(
            "ensemble-hedge-refresh",
            1,
            "reweight",
            applies_to=("ensemble",),
            params=_hedge_params(),
            made_by="refresh",
            doc="""Move a mean or vote ensemble's weights by Hedge with fixed share.

Each member's loss on the labelled window (in [0, 1]) moves its weight multiplicatively;
fixed share keeps every weight at least alpha / members; newcomers start in probation;
members that stay light retire to a pool they can come back from. Made by `regrow refresh`,
not by the planner: its parameters are the policy's ``ensemble`` section. See
docs/refresh.md.""",
        ),
        Recipe(
            "add-member-copy",
            1,
            "add-member",
            applies_to=("member",),
            doc="""Add a copy of a member, fitted on the window, next to it in the ensemble.

The copy starts with the member's weight. Needs approval by default (a design change).""",
        ),
        Recipe(
            "retire-member",
            1,
            "retire-member",
            applies_to=("member",),
            doc="""Remove a member from the system and its ensemble (nothing is fitted).

Needs approval by default; a gated ensemble cannot lose a member its rules name.""",
        ),
        Recipe(
            "full-retrain",
            1,
            "full-retrain",
            applies_to=("*",),
            doc="""Fit every component again on the plan's training rows.

What an escalated plan does: broad drift, many degraded members, or a full retrain expected
to beat the partial plan by more than it costs. Needs approval by default.""",
        ),
    )


#: The built-in recipes.
BUILTINS: tuple[Recipe, ...] = _builtins()

#: (action, family) -> the recipe the planner uses when the policy names none.
DEFAULTS: dict[tuple[str, str], str] = {
    **{("refit", f): "sklearn-refit-window" for f in
       ("lightgbm", "xgboost", "sklearn-hgb", "sklearn-gb", "torch", "other", "ensemble",
        "transform")},
    ("continue", "lightgbm"): "lightgbm-continue",
    ("continue", "xgboost"): "xgboost-continue",
    ("continue", "sklearn-hgb"): "sklearn-boosting-continue",
    ("continue", "sklearn-gb"): "sklearn-boosting-continue",
    ("leaf-refit", "lightgbm"): "lightgbm-leaf-refit",
    ("leaf-refit", "xgboost"): "xgboost-leaf-refresh",
    ("finetune", "torch"): "torch-surgical",
    ("reweight", "ensemble"): "ensemble-relearn",
    **{(k, f): r for k, r in (("add-member", "add-member-copy"),
                              ("retire-member", "retire-member"))
       for f in ("lightgbm", "xgboost", "sklearn-hgb", "sklearn-gb", "torch", "other")},
}  # fmt: skip
