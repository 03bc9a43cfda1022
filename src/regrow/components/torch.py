"""Torch members: scikit-learn compatible estimators around an ``nn.Module``, with named blocks.

The network is built by a *module factory*, ``factory(n_features, n_outputs) -> nn.Module``: a
module-level function, a :func:`functools.partial` of one, or a parameter object such as
:class:`MLP`. Each of these turns into the same JSON in every process, so the recipe (and the
fingerprint) of a member stays stable; a lambda or a closure would not be picklable.

**Blocks** group the network's parameters for selective fine-tuning (:mod:`regrow.plan.finetune`).
``blocks={"input": ["0", "1"], "middle": [r"2|3"], "head": ["head"]}`` maps a block name to
patterns. A pattern matches a parameter (or buffer, or module) when it *full-matches*, as a
regular expression, its qualified name or the name of a module that contains it, or when one of
those names *ends with* ``"." + pattern`` (as PEFT's ``target_modules``). A pattern that matches
nothing, or a parameter matched by two blocks, is a :class:`~regrow.errors.SystemSpecError`.
Parameters that no block claims form an implicit block named ``"rest"`` (listed in ``blocks_``
like the others, so nothing goes unreported). Without ``blocks``, each top-level child module
that holds parameters is a block named after it.

Blocks are ordered by their first parameter in registration order, which for sequential nets
is the forward order (input first, head last).

>>> import numpy as np
>>> X = np.random.default_rng(0).normal(size=(40, 4))
>>> y = (X[:, 0] > 0).astype(int)
>>> clf = TorchClassifier(MLP(hidden=(8,)), epochs=5, random_state=0).fit(X, y)
>>> list(clf.blocks_), clf.predict_proba(X).shape
(['layer0', 'head'], (40, 2))
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from regrow.components.adapters import FrameworkAdapter, register_adapter
from regrow.errors import ComponentError, MissingDependency, SystemSpecError

try:
    import torch
    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependency(exc.name or "torch", "torch") from exc

__all__ = [
    "MLP",
    "REST",
    "TorchAdapter",
    "TorchClassifier",
    "TorchEstimator",
    "TorchRegressor",
    "match_blocks",
]

#: Name of the implicit block holding the parameters that no declared block claims.
REST = "rest"

ModuleFactory = Callable[[int, int], nn.Module]


class MLP(BaseEstimator):  # type: ignore[misc]  # sklearn ships no types
    """Module factory for a multi-layer perceptron: ``MLP(hidden)(n_features, n_outputs)``.

    Its layers are named ``layer0``, ``layer1``, ... (each ``Linear``, optional ``BatchNorm1d``,
    ``ReLU``, optional ``Dropout``) and ``head``, so these names are its default blocks. Being a
    parameter object, it enters the recipe as ``{"class": ..., "params": {...}}``.

    A member checks its MLP's parameters when it fits, before anything is trained or
    recorded (a stored network loads as it was fitted): ``hidden`` is a sequence of layer
    widths, each an int >= 1 (empty: no hidden layer), ``batchnorm`` a bool and ``dropout`` a
    float in [0, 1).

    >>> MLP(hidden=(16, 8))(4, 3)[-1]
    Linear(in_features=8, out_features=3, bias=True)
    >>> MLP(hidden="32").check_params()
    Traceback (most recent call last):
    ...
    regrow.errors.SystemSpecError: the 'hidden' parameter of MLP must be a sequence of layer ...
    """

    def __init__(
        self, hidden: Sequence[int] = (64,), *, batchnorm: bool = False, dropout: float = 0.0
    ) -> None:
        self.hidden = hidden
        self.batchnorm = batchnorm
        self.dropout = dropout

    def check_params(self) -> None:
        """Refuse parameters that would build a broken network (a width of 0, a string)."""
        hidden, what = self.hidden, "a sequence of layer widths, each an int >= 1"
        example = "write hidden=(64,) for one hidden layer of 64 units, (64, 32) for two"
        if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence | np.ndarray):
            if _is_int(hidden) or (isinstance(hidden, str) and hidden.strip().isdigit()):
                example = (
                    f"write hidden=({int(hidden)},) for one hidden layer of {int(hidden)} units"
                )
            raise SystemSpecError(_bad_param(self, "hidden", what, hidden), hint=example)
        for i, width in enumerate(hidden):
            if not (_is_int(width) and width >= 1):
                raise SystemSpecError(
                    _bad_param(self, "hidden", what, hidden, f"hidden[{i}] is {width!r}"),
                    hint=example,
                )
        if not isinstance(self.batchnorm, bool | np.bool_):
            raise SystemSpecError(
                _bad_param(self, "batchnorm", "a bool", self.batchnorm),
                hint="write batchnorm=True or batchnorm=False",
            )
        if not (_is_num(self.dropout) and 0 <= self.dropout < 1):
            raise SystemSpecError(
                _bad_param(self, "dropout", "a float in [0, 1)", self.dropout),
                hint="dropout is the probability of zeroing a unit while training, e.g. 0.2",
            )

    def __call__(self, n_features: int, n_outputs: int) -> nn.Sequential:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width = n_features
        for i, h in enumerate(self.hidden):
            parts: list[nn.Module] = [nn.Linear(width, int(h))]
            if self.batchnorm:
                parts.append(nn.BatchNorm1d(int(h)))
            parts.append(nn.ReLU())
            if self.dropout:
                parts.append(nn.Dropout(float(self.dropout)))
            layers[f"layer{i}"] = nn.Sequential(*parts)
            width = int(h)
        layers["head"] = nn.Linear(width, n_outputs)
        return nn.Sequential(layers)


def _candidates(name: str) -> list[str]:
    """``name`` and the names of the modules that contain it: ``a.b.w`` -> a.b.w, a.b, a."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _pattern_matches(pattern: str, compiled: re.Pattern[str], name: str) -> bool:
    return any(
        compiled.fullmatch(c) is not None or c == pattern or c.endswith("." + pattern)
        for c in _candidates(name)
    )


def _compile(block: str, pattern: object) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise SystemSpecError(
            f"block {block!r}: pattern {pattern!r} must be a non-empty string",
            hint="write a module name, a suffix such as 'head', or a regex such as r'2|3'",
        )
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise SystemSpecError(
            f"block {block!r}: pattern {pattern!r} is not a valid regular expression ({exc})",
            hint="escape special characters, e.g. r'layer\\.0'",
        ) from exc


def match_blocks(
    module: nn.Module, blocks: Mapping[str, Sequence[str]] | None
) -> dict[str, tuple[str, ...]]:
    """Resolve block patterns on ``module``: block name -> its parameter and buffer names.

    Blocks come in the order of their first tensor in ``module.state_dict()``; tensors no
    block claims go to the implicit block ``"rest"`` (omitted when empty).

    >>> net = MLP(hidden=(4,))(3, 2)
    >>> match_blocks(net, {"body": ["layer0"], "out": [r"he.d"]})
    {'body': ('layer0.0.weight', 'layer0.0.bias'), 'out': ('head.weight', 'head.bias')}
    >>> match_blocks(net, {"body": ["nope"]})
    Traceback (most recent call last):
    ...
    regrow.errors.SystemSpecError: block 'body': pattern 'nope' matches no parameter ...
    """
    names = list(module.state_dict(keep_vars=True).keys())
    if blocks is None:
        owner: dict[str, str] = {}
        for name in names:
            owner[name] = name.split(".", 1)[0] if "." in name else REST
    else:
        if not isinstance(blocks, Mapping) or not blocks:
            raise SystemSpecError(
                f"blocks must be a mapping of block name to patterns (got {blocks!r})",
                hint='write blocks={"body": ["layer0"], "head": ["head"]}',
            )
        if REST in blocks:
            raise SystemSpecError(
                f"block name {REST!r} is reserved for parameters no block claims",
                hint="give that block another name",
            )
        owner = {}
        for block, patterns in blocks.items():
            if isinstance(patterns, str) or not isinstance(patterns, Sequence) or not patterns:
                raise SystemSpecError(
                    f"block {block!r}: patterns must be a non-empty list (got {patterns!r})",
                    hint=f"write {block!r}: [{patterns!r}]" if isinstance(patterns, str) else None,
                )
            for pattern in patterns:
                compiled = _compile(block, pattern)
                hits = [n for n in names if _pattern_matches(pattern, compiled, n)]
                if not hits:
                    sample = ", ".join(names[:6])
                    raise SystemSpecError(
                        f"block {block!r}: pattern {pattern!r} matches no parameter of "
                        f"{type(module).__name__}",
                        hint=f"its parameters are named like {sample}",
                    )
                for n in hits:
                    other = owner.get(n)
                    if other is not None and other != block:
                        raise SystemSpecError(
                            f"parameter {n!r} belongs to two blocks, {other!r} and {block!r}",
                            hint="make the patterns disjoint (patterns are full-match regexes "
                            "or name suffixes)",
                        )
                    owner[n] = block
        for name in names:
            owner.setdefault(name, REST)
    out: dict[str, list[str]] = {}
    for name in names:
        out.setdefault(owner[name], []).append(name)
    return {b: tuple(v) for b, v in out.items()}


class TorchEstimator(BaseEstimator):  # type: ignore[misc]  # sklearn ships no types
    """Shared training loop and serialization of :class:`TorchClassifier` and ``TorchRegressor``.

    Parameters are stored as given (scikit-learn convention); the fitted network is
    ``module_``, its blocks ``blocks_`` (block -> parameter and buffer names). Pickling stores
    the weights as safetensors bytes and rebuilds the network from the factory on load.
    """

    _STATE_KEY: ClassVar[str] = "module_"

    def __init__(
        self,
        module: ModuleFactory,
        *,
        blocks: Mapping[str, Sequence[str]] | None = None,
        epochs: int = 20,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        random_state: int | None = None,
        device: str = "cpu",
    ) -> None:
        self.module = module
        self.blocks = blocks
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device

    # -- what subclasses define -------------------------------------------------------------

    def encode_targets(self, y: Any, *, learn: bool = False) -> torch.Tensor:
        """``y`` as the tensor the loss expects; ``learn`` records classes/outputs first."""
        raise NotImplementedError

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The training loss (mean over the batch)."""
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError

    # -- helpers shared with regrow.plan.finetune -------------------------------------------

    def torch_device(self, *, strict: bool = False) -> torch.device:
        """The device to run on: ``cuda`` only when asked and available (``strict`` raises)."""
        if str(self.device).startswith("cuda"):
            if torch.cuda.is_available():
                return torch.device(self.device)
            if strict:
                raise ComponentError(
                    f"device {self.device!r} was asked for but CUDA is not available",
                    hint="use device='cpu' or install a CUDA build of torch",
                )
            return torch.device("cpu")
        if self.device != "cpu":
            raise ComponentError(
                f"unknown device {self.device!r}", hint="use 'cpu' or 'cuda' ('cuda:0', ...)"
            )
        return torch.device("cpu")

    def to_tensor(self, X: Any) -> torch.Tensor:
        """Features as a float32 tensor on the estimator's device."""
        arr = np.asarray(X, dtype=np.float32)
        if arr.ndim != 2:
            raise ComponentError(f"expected a 2-d feature matrix, got shape {arr.shape}")
        finite = np.isfinite(arr)
        if not finite.all():
            bad = np.flatnonzero(~finite.all(axis=0))
            columns = getattr(X, "columns", None)  # a DataFrame's names, else positions
            names = list(columns) if columns is not None else list(range(arr.shape[1]))
            shown = ", ".join(repr(names[i]) for i in bad[:3]) + (", ..." if len(bad) > 3 else "")
            raise ValueError(
                f"Input X contains NaN or infinity (column {shown}): a torch network cannot "
                "read missing values; impute them in a Transform before the member"
            )
        return torch.from_numpy(np.ascontiguousarray(arr)).to(self.torch_device())

    def build_module(self, seed: int) -> nn.Module:
        """A freshly initialised network of the fitted shape, from ``seed``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self.module(int(self.n_features_in_), self._n_outputs())
        if not isinstance(net, nn.Module):
            raise ComponentError(
                f"the module factory {self.module!r} returned a {type(net).__name__}",
                hint="a factory is called as factory(n_features, n_outputs) and returns an "
                "nn.Module",
            )
        return net.to(self.torch_device())

    def block_of(self, name: str) -> str | None:
        """The block of a parameter, buffer or module name (None: a module in no block)."""
        owner = self._owner_
        if name in owner:
            return owner[name]
        prefix = name + "."
        found = {b for n, b in owner.items() if n.startswith(prefix)}
        if len(found) == 1:
            return found.pop()
        if found:
            return None
        # A module with no tensors (ReLU, Dropout) belongs to the block of an enclosing module.
        for parent in _candidates(name)[1:]:
            found = {b for n, b in owner.items() if n.startswith(parent + ".")}
            if len(found) == 1:
                return found.pop()
        return None

    def predict_output(self, X: Any, *, batch_size: int = 4096) -> np.ndarray:
        """The network's raw outputs (logits or values), in eval mode."""
        self._check_fitted()
        net = self.module_
        was_training = net.training
        net.eval()
        xt = self.to_tensor(X)
        outs = []
        with torch.no_grad():
            for start in range(0, xt.shape[0], batch_size):
                outs.append(net(xt[start : start + batch_size]).detach().cpu())
        net.train(was_training)
        return torch.cat(outs).numpy().astype(np.float64)

    # -- fit --------------------------------------------------------------------------------

    def _check_params(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("epochs", _is_int(self.epochs) and self.epochs >= 1, "an int >= 1"),
            ("batch_size", _is_int(self.batch_size) and self.batch_size >= 1, "an int >= 1"),
            ("lr", _is_num(self.lr) and self.lr > 0, "a float in (0, inf)"),
            ("weight_decay", _is_num(self.weight_decay) and self.weight_decay >= 0, ">= 0"),
            (
                "random_state",
                self.random_state is None or _is_int(self.random_state),
                "an int or None",
            ),
            ("module", callable(self.module), "a callable factory(n_features, n_outputs)"),
        ]
        for key, ok, what in checks:
            if not ok:
                raise SystemSpecError(_bad_param(self, key, what, getattr(self, key)))
        if isinstance(self.module, MLP):
            self.module.check_params()

    def fit(self, X: Any, y: Any) -> TorchEstimator:
        """Train a fresh network on ``(X, y)``; deterministic given ``random_state``."""
        self._check_params()
        self.torch_device(strict=True)
        seed = 0 if self.random_state is None else int(self.random_state)
        xt_cpu = np.asarray(X, dtype=np.float32)
        if xt_cpu.ndim != 2 or len(xt_cpu) == 0:
            raise ComponentError(f"expected a non-empty 2-d feature matrix, got {xt_cpu.shape}")
        self.n_features_in_ = int(xt_cpu.shape[1])
        target = self.encode_targets(y, learn=True)
        net = self.build_module(seed)
        self._owner_ = {}
        self.blocks_ = match_blocks(net, self.blocks)
        self._owner_ = {n: b for b, names in self.blocks_.items() for n in names}
        xt = self.to_tensor(xt_cpu)
        optimizer = torch.optim.AdamW(
            net.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay)
        )
        with _seeded(seed + 1) as gen:
            net.train()
            for _ in range(int(self.epochs)):
                order = torch.randperm(xt.shape[0], generator=gen)
                for start in range(0, xt.shape[0], int(self.batch_size)):
                    idx = order[start : start + int(self.batch_size)].to(xt.device)
                    if len(idx) < 2 and _has_batchnorm(net):
                        continue  # BatchNorm cannot normalise a batch of one
                    optimizer.zero_grad(set_to_none=True)
                    self.loss(net(xt[idx]), target[idx]).backward()  # type: ignore[no-untyped-call]
                    optimizer.step()
        net.eval()
        self.module_ = net
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise ComponentError(
                f"this {type(self).__name__} is not fitted yet", hint="call fit(X, y) first"
            )

    # -- pickling: weights as safetensors ----------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        net = state.pop(self._STATE_KEY, None)
        if net is not None:
            tensors = {
                k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()
            }
            state["_weights_safetensors"] = st_save(tensors)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("_weights_safetensors", None)
        self.__dict__.update(state)
        if weights is not None:
            net = self.build_module(0)
            net.load_state_dict(st_load(weights))
            net.eval()
            self.module_ = net


class TorchClassifier(ClassifierMixin, TorchEstimator):  # type: ignore[misc]
    """A torch classifier: cross-entropy on the network's logits, one output per class.

    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(30, 3))
    >>> y = np.where(X[:, 1] > 0, "yes", "no")
    >>> clf = TorchClassifier(MLP(hidden=(8,)), epochs=3, random_state=1).fit(X, y)
    >>> clf.classes_.tolist(), clf.predict(X[:2]).shape
    (['no', 'yes'], (2,))
    """

    def encode_targets(self, y: Any, *, learn: bool = False) -> torch.Tensor:
        labels = np.asarray(y)
        if labels.ndim != 1:
            raise ComponentError(f"expected 1-d class labels, got shape {labels.shape}")
        if learn:
            self.classes_ = np.unique(labels)
        codes = np.searchsorted(self.classes_, labels)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        unknown = self.classes_[codes] != labels
        if unknown.any():
            raise ComponentError(
                f"labels {sorted(set(labels[unknown].tolist()))[:5]} were not seen when fitting",
                hint=f"the classes are {self.classes_.tolist()}",
            )
        return torch.from_numpy(codes.astype(np.int64)).to(self.torch_device())

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(output, target)

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        logits = self.predict_output(X)
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z)
        return np.asarray(p / p.sum(axis=1, keepdims=True))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row."""
        codes = self.predict_output(X).argmax(axis=1)
        return np.asarray(self.classes_[codes])


class TorchRegressor(RegressorMixin, TorchEstimator):  # type: ignore[misc]
    """A torch regressor: mean squared error, one output per target column.

    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(30, 3))
    >>> reg = TorchRegressor(MLP(hidden=(8,)), epochs=3, random_state=1).fit(X, X[:, 0])
    >>> reg.predict(X[:4]).shape
    (4,)
    """

    def encode_targets(self, y: Any, *, learn: bool = False) -> torch.Tensor:
        values = np.asarray(y, dtype=np.float32)
        if values.ndim not in (1, 2):
            raise ComponentError(f"expected 1-d or 2-d targets, got shape {values.shape}")
        if learn:
            self.n_outputs_ = 1 if values.ndim == 1 else int(values.shape[1])
            self._target_1d_ = values.ndim == 1
        values = values.reshape(len(values), -1)
        return torch.from_numpy(np.ascontiguousarray(values)).to(self.torch_device())

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(output, target)

    def _n_outputs(self) -> int:
        return int(self.n_outputs_)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values (1-d when fitted on a 1-d target)."""
        out = self.predict_output(X)
        return out[:, 0] if self._target_1d_ else out


def _bad_param(owner: object, key: str, what: str, value: object, detail: str = "") -> str:
    """scikit-learn's message shape: ``the 'lr' parameter of X must be ... Got -1 instead.``"""
    got = f"Got {value!r} instead" + (f": {detail}." if detail else ".")
    return f"the {key!r} parameter of {type(owner).__name__} must be {what}. {got}"


def _is_int(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


@contextmanager
def _seeded(seed: int) -> Iterator[torch.Generator]:
    """A CPU generator for shuffling, and the global RNG (dropout) seeded then restored."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator()
        gen.manual_seed(seed)
        yield gen


class TorchAdapter(FrameworkAdapter):
    """Torch members: fingerprints carry torch and safetensors versions; seeds ``random_state``."""

    name: ClassVar[str] = "torch"
    libraries: ClassVar[tuple[str, ...]] = ("torch", "safetensors", "numpy", "scikit-learn")

    def matches(self, estimator: Any) -> bool:
        return isinstance(estimator, TorchEstimator)


register_adapter(TorchAdapter())
