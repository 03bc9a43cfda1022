"""Version references: parsing and formatting (property tests)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regrow.catalog.refs import (
    NAME_PATTERN,
    VersionRef,
    check_name,
    format_version_ref,
    is_id_prefix,
    parse_version_ref,
)
from regrow.errors import ConfigError

names = st.from_regex(NAME_PATTERN, fullmatch=True)
numbers = st.integers(min_value=0, max_value=999_999_999)


@given(system=names, number=numbers, with_v=st.booleans())
def test_numbered_references_round_trip(system: str, number: int, with_v: bool) -> None:
    text = f"{system}:{'v' if with_v else ''}{number}"
    ref = parse_version_ref(text)
    assert (ref.kind, ref.system, ref.number, ref.alias) == ("number", system, number, None)
    assert format_version_ref(ref) == f"{system}:v{number}"
    assert parse_version_ref(format_version_ref(ref)) == VersionRef(
        "number", system, number, None, f"{system}:v{number}"
    )


@given(system=names, alias=names)
def test_alias_references_round_trip(system: str, alias: str) -> None:
    ref = parse_version_ref(f"{system}@{alias}")
    assert (ref.kind, ref.system, ref.alias) == ("alias", system, alias)
    assert format_version_ref(ref) == f"{system}@{alias}"


@given(text=names)
def test_bare_names_stay_bare(text: str) -> None:
    ref = parse_version_ref(text)
    assert (ref.kind, ref.text) == ("bare", text)
    assert format_version_ref(ref) == text


@given(text=st.text(max_size=40))
def test_parsing_accepts_or_names_the_problem(text: str) -> None:
    try:
        ref = parse_version_ref(text)
    except ConfigError as exc:
        message = str(exc)
    else:
        message = ""
        assert parse_version_ref(format_version_ref(ref)).kind == ref.kind
    assert message == "" or message.startswith("invalid version reference")


@given(value=st.text(max_size=300))
def test_check_name_accepts_exactly_the_pattern(value: str) -> None:
    valid = re.fullmatch(NAME_PATTERN, value) is not None
    if valid:
        assert check_name("system", value) == value
    else:
        with pytest.raises(ConfigError) as info:
            check_name("system", value)
        assert repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("abcdef", True), ("abcde", False), ("ABCDEF", False), ("abcdeg", False), ("0" * 32, True)],
)
def test_id_prefixes(text: str, expected: bool) -> None:
    assert is_id_prefix(text) is expected


@pytest.mark.parametrize("bad", ["churn:vx", "churn:", ":3", "a b", "churn@", "@champion", "x@y@z"])
def test_malformed_references_say_what_is_expected(bad: str) -> None:
    with pytest.raises(ConfigError, match="invalid version reference") as info:
        parse_version_ref(bad)
    assert "'<system>:v<N>'" in str(info.value)
