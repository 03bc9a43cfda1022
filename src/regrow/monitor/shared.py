"""What monitoring works out from a reference once, kept for every monitor of the process.

``regrow watch`` and ``regrow serve`` monitor the same version on a new small window every
cycle. Everything that depends on the reference alone -- the simulated null samples of the
drift tests, the sampled reference rows, the fitted CBPE/DLE estimators with their sampling
errors, attribution's loss models, the PCA of the multivariate check, the reference's side
of the distributions -- is worked out on the first window and kept here, so the next windows
pay for the window only. Each kind lives in its own :class:`SharedCache`, a small
thread-safe LRU:

==================  ======  ==============================================  ===================
cache               kept    key (everything the value depends on)           size of one
==================  ======  ==============================================  ===================
``NULL_SAMPLES``    4       drift calibration seed and draws: a dict of     at most 256 MB
                            simulated samples by window size and bins       (``SAMPLES_BYTES``)
``REFERENCES``      4       snapshot id (a content hash), columns, rows,    ~2 MB (20,000 rows
                            stratum, seed                                   of 10 columns)
``ESTIMATORS``      8       version (:func:`version_key`), fit snapshot,    ~0.5 MB
                            sample, task, metrics, cost matrix, seed
``LOSS_MODELS``     32      version, reference snapshot, its columns and    ~0.1 MB
                            rows, task, component, its columns, seed
``PCA_FITS``        8       reference snapshot and sample, columns, seed,   ~0.1 MB
                            the PCA's parameters
``DISTRIBUTIONS``   8       reference snapshot and sample, columns, bins    ~10 kB
==================  ======  ==============================================  ===================

Past the null samples (one dict in practice: every monitor uses seed 0 and 500 draws; about
40 MB for the demo's churn system on 400-row windows), the process holds at most about 20 MB,
whatever it monitors. A version is named by its id and by the content hashes of its spec and
artifacts, a snapshot by its id (a content hash): a different policy, seed, model or
reference misses, and two workspaces do not share what depends on a model. Values are shared,
never changed after they are made (the estimators only fill their own per-window-size
caches, with the same numbers for every caller), and a value is made once even when threads
ask for it at the same time. :func:`clear` empties every cache (tests compare a cold monitor
with a warm one).

>>> cache = SharedCache("squares", kept=2)
>>> [cache.get(n, lambda n=n: n * n) for n in (3, 4, 3, 5)]
[9, 16, 9, 25]
>>> cache.hits, cache.misses, len(cache), 4 in cache
(1, 3, 2, False)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from regrow._hashing import hash_json

if TYPE_CHECKING:
    from regrow.model import FittedSystem

__all__ = [
    "DISTRIBUTIONS",
    "ESTIMATORS",
    "LOSS_MODELS",
    "NULL_SAMPLES",
    "PCA_FITS",
    "REFERENCES",
    "SharedCache",
    "caches",
    "clear",
    "version_key",
]

V = TypeVar("V")


class SharedCache(Generic[V]):
    """A bounded, thread-safe LRU of values made once per key (see the module docs).

    ``kept``: the most entries held; past it the least recently used is dropped. ``hits``
    and ``misses`` count the lookups answered from the cache and the values made.
    """

    def __init__(self, name: str, *, kept: int) -> None:
        if not isinstance(kept, int) or kept < 1:
            raise ValueError(f"'kept' must be a whole number of at least 1; got {kept!r}")
        self.name = name
        self.kept = kept
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self._making: dict[Hashable, threading.Lock] = {}

    def __repr__(self) -> str:
        return f"SharedCache({self.name!r}, <{len(self)} of {self.kept}>)"

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        """The value under ``key``; ``make()`` makes it when there is none (once, whatever
        the threads asking). An error ``make`` raises is raised and nothing is kept."""
        with self._lock:
            if key in self._items:
                self.hits += 1
                self._items.move_to_end(key)
                return self._items[key]
            making = self._making.setdefault(key, threading.Lock())
        with making:
            with self._lock:
                if key in self._items:  # another thread made it while this one waited
                    self.hits += 1
                    self._items.move_to_end(key)
                    return self._items[key]
            try:
                value = make()
            except BaseException:
                with self._lock:
                    self._making.pop(key, None)
                raise
            with self._lock:
                self.misses += 1
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.kept:
                    self._items.popitem(last=False)
                self._making.pop(key, None)
            return value

    def clear(self) -> None:
        """Drop every entry and reset the counts."""
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


NULL_SAMPLES: SharedCache[dict[Hashable, Any]] = SharedCache("null samples", kept=4)
REFERENCES: SharedCache[Any] = SharedCache("references", kept=4)
ESTIMATORS: SharedCache[Any] = SharedCache("estimators", kept=8)
LOSS_MODELS: SharedCache[Any] = SharedCache("loss models", kept=32)
PCA_FITS: SharedCache[Any] = SharedCache("pca fits", kept=8)
DISTRIBUTIONS: SharedCache[Any] = SharedCache("distributions", kept=8)
_ALL: dict[str, SharedCache[Any]] = {
    c.name: c for c in (NULL_SAMPLES, REFERENCES, ESTIMATORS, LOSS_MODELS, PCA_FITS, DISTRIBUTIONS)
}


def caches() -> Mapping[str, SharedCache[Any]]:
    """The process's shared caches of the table above, by name.

    >>> sorted(caches())
    ['distributions', 'estimators', 'loss models', 'null samples', 'pca fits', 'references']
    """
    return dict(_ALL)


def clear() -> None:
    """Empty every shared cache: the next monitor works everything out again.

    >>> REFERENCES.get("k", lambda: 1), len(REFERENCES) > 0
    (1, True)
    >>> clear(); len(REFERENCES)
    0
    """
    for cache in _ALL.values():
        cache.clear()


def version_key(version_id: str, model: FittedSystem) -> tuple[str, str] | None:
    """What identifies a version's outputs in the process: its id (a uuid, so two workspaces
    never share an entry) and a hash of the loaded model's spec (graph, ensemble weights,
    adapters) and of the artifacts its components were read from (content hashes). None for
    a model fitted in memory, whose outputs nothing names: nothing is shared then.
    """
    if not model.artifacts or set(model.artifacts) != set(model.components):
        return None
    try:
        return version_id, hash_json({"spec": model.spec, "artifacts": model.artifacts})
    except (TypeError, ValueError):
        return None
