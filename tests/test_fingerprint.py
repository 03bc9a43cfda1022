"""Fingerprints: each part moves the fingerprint (code: tests/test_code_fingerprint.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System
from regrow.fingerprint import (
    changed_parts,
    component_parts,
    derive_seed,
    fingerprint,
)

HASHES = {"x": "h-x", "z": "h-z", "y": "h-y"}


def system(c: float = 1.0) -> System:
    return System(
        "s",
        target="y",
        components=[
            Member("m", LogisticRegression(C=c), ["x"]),
            Member("n", LogisticRegression(), ["z"]),
            Ensemble("e", weights={"m": 1, "n": 1}),
        ],
    )


def parts(sys_: System, name: str = "m", hashes: dict[str, str] = HASHES, seed: int = 1) -> dict:  # type: ignore[type-arg]
    return component_parts(sys_, name, column_hashes=hashes, seed=seed, upstream={})


def test_same_inputs_same_fingerprint() -> None:
    assert fingerprint(parts(system())) == fingerprint(parts(system()))


def test_parameters_data_and_seed_each_change_the_fingerprint() -> None:
    base = parts(system())
    assert changed_parts(base, parts(system(c=2.0))) == ["parameters"]
    assert changed_parts(base, parts(system(), hashes={**HASHES, "x": "other"})) == ["data"]
    assert changed_parts(base, parts(system(), seed=2)) == ["seed"]


def test_only_the_columns_a_component_reads_count() -> None:
    base = parts(system())
    assert changed_parts(base, parts(system(), hashes={**HASHES, "z": "other"})) == []


def test_upstream_change_is_named() -> None:
    s = system()
    a = component_parts(s, "e", column_hashes=None, seed=0, upstream={"m": "1", "n": "2"})
    b = component_parts(s, "e", column_hashes=None, seed=0, upstream={"m": "X", "n": "2"})
    assert changed_parts(a, b) == ["upstream"]


def test_code_version_replaces_source_hashing() -> None:
    s = System(
        "s", target="y", components=[Member("m", LogisticRegression(), ["x"], code_version="1")]
    )
    assert parts(s)["code"] == {"version": "1"}


@given(st.integers(min_value=0, max_value=2**40), st.text(min_size=1, max_size=20))
def test_derived_seeds_are_stable_and_in_range(run_seed: int, name: str) -> None:
    seed = derive_seed(run_seed, name)
    assert seed == derive_seed(run_seed, name)
    assert 0 <= seed < 2**31
