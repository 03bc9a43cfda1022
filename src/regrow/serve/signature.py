"""What a served version takes and returns, in Open Inference Protocol terms.

A version's **inputs** are the raw columns its graph reads (the inputs of its transforms and
members that are not themselves components), in the order of the schema of the snapshot it
was trained on, each with the protocol datatype of its logical dtype:

=============================  ==========  ================================================
schema dtype                   datatype    sent as
=============================  ==========  ================================================
``int``                        ``INT64``   JSON integers (integral floats are accepted)
``float``                      ``FP64``    JSON numbers
``bool``                       ``BOOL``    ``true`` / ``false``
``string``, ``category``       ``BYTES``   JSON strings
``datetime``                   ``BYTES``   ISO 8601 strings (``"2024-05-01T12:00:00"``)
=============================  ==========  ================================================

Its **outputs** are ``predict`` (the label or value: ``INT64``, ``FP64``, ``BOOL`` or
``BYTES`` after the classes' type) and, for classification, ``probabilities`` (``FP64``,
shape ``[-1, K]``, columns in ``classes`` order). ``null`` is a missing value in any input.

A hot swap replaces a version only by one with the same signature (:func:`differences`):
clients keep sending what they sent and reading what they read.

>>> spec = {"task": "classification", "components": {
...     "onehot": {"kind": "transform", "inputs": ["plan"]},
...     "m": {"kind": "member", "inputs": ["age", "onehot"]}}}
>>> schema = {"columns": [{"name": "age", "dtype": "int"}, {"name": "plan", "dtype": "category"},
...                       {"name": "y", "dtype": "int"}]}
>>> sig = Signature.of(spec, schema, classes=[0, 1])
>>> [(t.name, t.datatype) for t in sig.inputs]
[('age', 'INT64'), ('plan', 'BYTES')]
>>> [(t.name, t.datatype, t.shape) for t in sig.outputs]
[('predict', 'INT64', (-1,)), ('probabilities', 'FP64', (-1, 2))]
>>> differences(sig, Signature.of(spec, schema, classes=[0, 1, 2]))
['classes change from [0, 1] to [0, 1, 2]', 'output probabilities changes shape ...']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from regrow.errors import SystemSpecError

__all__ = ["DATATYPES", "Signature", "TensorSpec", "compatible", "datatype_of", "differences"]

#: Logical schema dtype -> protocol datatype.
DATATYPES = {
    "int": "INT64",
    "float": "FP64",
    "bool": "BOOL",
    "string": "BYTES",
    "category": "BYTES",
    "datetime": "BYTES",
}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: its name, protocol datatype and shape (-1: any number of rows).

    ``dtype`` is the logical schema dtype an input is coerced to (``datetime`` inputs are
    ``BYTES`` on the wire); outputs have the dtype their datatype implies.
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    dtype: str

    def metadata(self) -> dict[str, Any]:
        """As the model metadata endpoint lists it."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Signature:
    """The inputs and outputs of one served version (see the module docs)."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    task: str
    classes: tuple[Any, ...] | None = None
    #: Another name a client may send an input under -> the input (the version's
    #: :class:`~regrow.data.adapters.Rename` adapters: upstream renamed the column).
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: Inputs a client may leave out: a :class:`~regrow.data.adapters.Default` adapter fills
    #: them.
    optional: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {t.name: t for t in self.inputs})

    def canonical(self, name: str) -> str:
        """The input a client's ``name`` stands for (itself, unless it is an alias)."""
        return self.aliases.get(name, name)

    @property
    def input_names(self) -> list[str]:
        """The input columns, in order."""
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        """The outputs, in order."""
        return [t.name for t in self.outputs]

    def input(self, name: str) -> TensorSpec | None:
        """The input called ``name``, or None."""
        found: TensorSpec | None = self.__dict__["_by_name"].get(name)
        return found

    @classmethod
    def of(
        cls,
        spec: Mapping[str, Any],
        schema: Mapping[str, Any],
        classes: Sequence[Any] | None,
    ) -> Signature:
        """The signature of a version: its system ``spec`` (``SystemVersionRecord.spec``),
        the ``schema`` spec of its training snapshot, and its ``classes`` (classification)."""
        components = spec["components"]
        read: set[str] = set()
        for info in components.values():
            if info.get("kind") != "ensemble":
                read.update(c for c in info.get("inputs", []) if c not in components)
        dtypes = {c["name"]: c["dtype"] for c in schema.get("columns", [])}
        unknown = sorted(read - set(dtypes))
        if unknown:
            raise SystemSpecError(
                f"the graph reads columns {unknown} that its training snapshot's schema lacks",
                hint="retrain the version on a snapshot that has them",
            )
        inputs = tuple(
            TensorSpec(name, DATATYPES[dtypes[name]], (-1,), dtypes[name])
            for name in dtypes
            if name in read
        )
        aliases: dict[str, str] = {}
        optional: set[str] = set()
        for adapter in spec.get("adapters") or ():
            if adapter.get("kind") == "rename" and adapter.get("column") in read:
                aliases[str(adapter["source"])] = str(adapter["column"])
            elif adapter.get("kind") == "default" and adapter.get("column") in read:
                optional.add(str(adapter["column"]))
        extra: dict[str, Any] = {"aliases": aliases, "optional": frozenset(optional)}
        if spec.get("task") == "classification" and classes:
            label = datatype_of(classes)
            outputs = (
                TensorSpec("predict", label, (-1,), _DTYPES[label]),
                TensorSpec("probabilities", "FP64", (-1, len(classes)), "float"),
            )
            return cls(inputs, outputs, "classification", tuple(classes), **extra)
        return cls(
            inputs, (TensorSpec("predict", "FP64", (-1,), "float"),), str(spec["task"]), **extra
        )

    def metadata(self) -> dict[str, Any]:
        """``inputs`` and ``outputs`` as the model metadata endpoint lists them."""
        return {
            "inputs": [t.metadata() for t in self.inputs],
            "outputs": [t.metadata() for t in self.outputs],
        }


_DTYPES = {"INT64": "int", "FP64": "float", "BOOL": "bool", "BYTES": "string"}


def datatype_of(values: Sequence[Any]) -> str:
    """The protocol datatype that holds every one of ``values`` (class labels, say).

    >>> datatype_of([0, 1]), datatype_of([True, False]), datatype_of(["no", "yes"])
    ('INT64', 'BOOL', 'BYTES')
    """
    kinds = {type(v) for v in values}
    if kinds <= {bool}:
        return "BOOL"
    if kinds <= {int}:
        return "INT64"
    if kinds <= {int, float}:
        return "FP64"
    return "BYTES"


def differences(old: Signature, new: Signature) -> list[str]:
    """What a client of ``old`` would notice if ``new`` served it; empty: compatible."""
    found: list[str] = []
    before = {t.name: t for t in old.inputs}
    after = {t.name: t for t in new.inputs}
    for name in sorted(before.keys() - after.keys()):
        found.append(f"input {name!r} is no longer read")
    for name in sorted(after.keys() - before.keys()):
        found.append(f"input {name!r} ({after[name].datatype}) is new")
    for name in sorted(before.keys() & after.keys()):
        if before[name].dtype != after[name].dtype:
            found.append(f"input {name!r} changes from {before[name].dtype} to {after[name].dtype}")
    for alias, name in sorted(old.aliases.items()):
        if new.aliases.get(alias) != name and name in after:
            found.append(f"input {name!r} is no longer accepted as {alias!r}")
    for name in sorted((old.optional - new.optional) & after.keys()):
        found.append(f"input {name!r} may no longer be left out")
    if old.task != new.task:
        found.append(f"the task changes from {old.task} to {new.task}")
    if old.classes != new.classes:
        found.append(f"classes change from {_listed(old.classes)} to {_listed(new.classes)}")
    outs = {t.name: t for t in new.outputs}
    for out in old.outputs:
        other = outs.get(out.name)
        if other is None:
            found.append(f"output {out.name!r} is gone")
        elif other.datatype != out.datatype:
            found.append(f"output {out.name!r} changes from {out.datatype} to {other.datatype}")
        elif other.shape != out.shape:
            found.append(
                f"output {out.name} changes shape from {list(out.shape)} to {list(other.shape)}"
            )
    return found


def compatible(old: Signature, new: Signature) -> bool:
    """Whether ``new`` can replace ``old`` without a client noticing (:func:`differences`)."""
    return not differences(old, new)


def _listed(classes: tuple[Any, ...] | None) -> list[Any] | None:
    return None if classes is None else list(classes)
