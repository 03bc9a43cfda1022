"""Fitted components as self-contained bytes: the user's own code travels with them.

A fitted component can hold the user's own functions and classes (a ``FunctionTransformer``
of a helper, a custom estimator class). Plain pickle stores those as references
(``helpers.log1p_clip``), so loading needs the same module importable under the same name:
``regrow monitor`` run from another folder, a renamed system file, or a worker on another
machine then fails with ``No module named 'helpers'``. Here the user's modules (see
:func:`regrow._modules.is_user_module`) are pickled *by value* with cloudpickle, the way Ray and
Dask ship functions; installed libraries stay references, as their versions are recorded.

>>> import functools
>>> loads(dumps(functools.partial(max, 1)), what="a partial")(3)
3
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

import cloudpickle

from regrow._modules import user_modules
from regrow.errors import ComponentError

__all__ = ["dumps", "loads"]

_LOCK = threading.Lock()  # cloudpickle's by-value registry is process-wide


def dumps(obj: Any) -> bytes:
    """``obj`` as bytes that load without the user's modules on the path."""
    with _LOCK:
        registered = []
        for module in user_modules():  # __main__ is pickled by value already
            try:
                cloudpickle.register_pickle_by_value(module)
            except ValueError:  # already registered, or not importable by that name
                continue
            registered.append(module)
        try:
            data: bytes = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
            return data
        finally:
            for module in registered:
                cloudpickle.unregister_pickle_by_value(module)


def loads(data: bytes, *, what: str) -> Any:
    """Load bytes written by :func:`dumps` (or plain pickle), already verified by their hash.

    An artifact from before by-value pickling may still name a module of the user's that is
    not importable here: that becomes a :class:`~regrow.errors.ComponentError` with a hint.
    """
    try:
        return pickle.loads(data)
    except ModuleNotFoundError as exc:
        raise ComponentError(
            f"{what} refers to your module {exc.name!r}, which is not importable here",
            hint=f"run regrow from the folder that holds {exc.name}.py, or add that folder to "
            "PYTHONPATH (components fitted now carry their own code; this one was fitted "
            "before they did)",
        ) from exc
