"""Parsing of the references users write for system versions.

==================  ===================================================
``churn:v3``        version number 3 of system ``churn``
``churn:3``         the same
``churn@champion``  the version the alias ``champion`` points to
``churn``           the newest version of ``churn``
``3f2a9c41``        a version id, or a unique prefix of >= 6 characters
==================  ===================================================

>>> parse_version_ref("churn:v3")
VersionRef(kind='number', system='churn', number=3, alias=None, text='churn:v3')
>>> parse_version_ref("churn@champion").alias
'champion'
>>> parse_version_ref("churn").kind
'bare'
>>> format_version_ref(parse_version_ref("churn:3"))
'churn:v3'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from regrow.errors import ConfigError

__all__ = [
    "MIN_PREFIX",
    "NAME_PATTERN",
    "VersionRef",
    "check_name",
    "format_version_ref",
    "is_hex",
    "is_id_prefix",
    "parse_version_ref",
]

#: System and alias names: letters, digits, ``_``, ``.`` and ``-``, not starting with ``.``/``-``.
NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}"
#: The shortest id prefix accepted for a lookup.
MIN_PREFIX = 6

_NAME = re.compile(NAME_PATTERN)
_NUMBER = re.compile(r"v?([0-9]{1,9})")
_HEX = re.compile(r"[0-9a-f]+")

RefKind = Literal["number", "alias", "bare"]


@dataclass(frozen=True)
class VersionRef:
    """A parsed version reference.

    ``kind`` is ``"number"`` (``system`` and ``number`` set), ``"alias"`` (``system`` and
    ``alias`` set) or ``"bare"``: ``text`` is a system name, a version id or an id prefix, which
    only the catalog can tell apart.
    """

    kind: RefKind
    system: str | None
    number: int | None
    alias: str | None
    text: str


def check_name(what: str, value: object) -> str:
    """``value`` if it is a valid system or alias name, else a :class:`ConfigError`.

    >>> check_name("system", "churn-v2.eu")
    'churn-v2.eu'
    >>> check_name("alias", "champ ion")
    Traceback (most recent call last):
    ...
    regrow.errors.ConfigError: invalid alias name 'champ ion'; ...
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ConfigError(
            f"invalid {what} name {value!r}",
            hint="use letters, digits, '_', '.' and '-' (at most 255), starting with a letter, "
            "digit or '_'",
        )
    return value


def parse_version_ref(ref: str) -> VersionRef:
    """Parse ``ref`` (see the module docstring); a :class:`ConfigError` if it cannot be one."""
    if not isinstance(ref, str) or not ref.strip():
        raise ConfigError(
            f"invalid version reference {ref!r}",
            hint="write '<system>:v<N>', '<system>@<alias>', '<system>' or a version id",
        )
    ref = ref.strip()
    if "@" in ref:
        system, _, alias = ref.partition("@")
        if _NAME.fullmatch(system) and _NAME.fullmatch(alias):
            return VersionRef("alias", system, None, alias, ref)
    elif ":" in ref:
        system, _, number = ref.rpartition(":")
        match = _NUMBER.fullmatch(number)
        if _NAME.fullmatch(system) and match:
            return VersionRef("number", system, int(match.group(1)), None, ref)
    elif _NAME.fullmatch(ref):
        return VersionRef("bare", None, None, None, ref)
    raise ConfigError(
        f"invalid version reference {ref!r}",
        hint="write '<system>:v<N>' (e.g. 'churn:v3'), '<system>@<alias>' (e.g. "
        "'churn@champion'), '<system>' for its newest version, or a version id",
    )


def format_version_ref(ref: VersionRef) -> str:
    """The canonical text of ``ref``: ``system:vN``, ``system@alias`` or the bare text."""
    if ref.kind == "number":
        return f"{ref.system}:v{ref.number}"
    if ref.kind == "alias":
        return f"{ref.system}@{ref.alias}"
    return ref.text


def is_id_prefix(text: str) -> bool:
    """Whether ``text`` can be an id prefix: lowercase hex, at least :data:`MIN_PREFIX` long.

    >>> is_id_prefix("3f2a9c"), is_id_prefix("3f2a9"), is_id_prefix("churn1")
    (True, False, False)
    """
    return len(text) >= MIN_PREFIX and is_hex(text)


def is_hex(text: str) -> bool:
    """Whether ``text`` is lowercase hex, as ids are (of any length).

    >>> is_hex("3f2a9"), is_hex("churn")
    (True, False)
    """
    return _HEX.fullmatch(text) is not None
