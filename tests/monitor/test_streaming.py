"""StreamMonitor: ADWIN defaults stay quiet on stable streams and fire on a step change."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np
import pytest

from regrow.errors import ConfigError, MissingDependency
from regrow.monitor.streaming import StreamMonitor


def test_defaults_do_not_fire_on_20_stable_bernoulli_streams() -> None:
    fired = 0
    for seed in range(20):
        errors = np.random.default_rng(seed).uniform(size=10_000) < 0.1
        fired += StreamMonitor().update_many(errors).size > 0
    assert fired == 0


def test_step_change_in_error_rate_fires_soon_after_the_step() -> None:
    delays = []
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        errors = np.r_[rng.uniform(size=5000) < 0.1, rng.uniform(size=5000) < 0.3]
        alarms = StreamMonitor().update_many(errors)
        assert alarms.size > 0
        assert alarms[0] >= 5000, "no alarm before the change"
        delays.append(alarms[0] - 5000)
    assert max(delays) < 1000


def test_update_and_update_many_agree_and_count_globally() -> None:
    rng = np.random.default_rng(3)
    errors = np.r_[rng.uniform(size=2000) < 0.1, rng.uniform(size=2000) < 0.4].astype(float)
    one = StreamMonitor()
    fired = [i for i, e in enumerate(errors) if one.update(e)]
    many = StreamMonitor()
    many.update_many(errors[:1500])
    many.update_many(errors[1500:])
    assert fired == one.alarms == many.alarms
    assert many.n_seen == 4000
    assert 0.3 < many.estimate < 0.5
    many.reset()
    assert many.n_seen == 0
    assert many.alarms == []


@pytest.mark.parametrize(("kwargs", "word"), [({"delta": 0}, "delta"), ({"grace": 0}, "grace")])
def test_bad_parameters_are_refused_with_the_parameter_named(
    kwargs: dict[str, Any], word: str
) -> None:
    with pytest.raises(ConfigError, match=word):
        StreamMonitor(**kwargs)


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="finite"):
        StreamMonitor().update_many([0.0, float("nan")])
    with pytest.raises(ConfigError, match="finite"):
        StreamMonitor().update(float("inf"))


def test_missing_river_raises_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("river"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingDependency, match=r"regrow\[monitor\]"):
        StreamMonitor()
