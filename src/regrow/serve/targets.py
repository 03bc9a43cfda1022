"""What a server serves: ``SYSTEM@ALIAS`` (followed as the alias moves) or ``SYSTEM:vN``
(pinned), and the default, every system's ``champion`` (see :mod:`.host`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from regrow.catalog.refs import check_name
from regrow.errors import ConfigError

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog

__all__ = ["Target", "default_targets"]


@dataclass(frozen=True)
class Target:
    """What a slot serves: ``system@alias``, or version ``number`` of ``system`` (pinned).

    >>> Target.parse("churn@champion").alias, Target.parse("churn:v2").number
    ('champion', 2)
    """

    system: str
    alias: str | None = None
    number: int | None = None

    @classmethod
    def parse(cls, ref: str) -> Target:
        """``SYSTEM@ALIAS`` or ``SYSTEM:vN`` (``SYSTEM:N``)."""
        if "@" in ref:
            system, _, alias = ref.partition("@")
            return cls(check_name("system", system), alias=check_name("alias", alias))
        system, _, number = ref.rpartition(":")
        number = number.removeprefix("v")
        if not system or not number.isdigit():
            raise ConfigError(
                f"cannot serve {ref!r}: name a SYSTEM@ALIAS or a SYSTEM:vN",
                hint='for example "churn@champion" or "churn:v2"',
            )
        return cls(check_name("system", system), number=int(number))

    @property
    def label(self) -> str:
        """``churn@champion`` or ``churn:v2``."""
        return f"{self.system}@{self.alias}" if self.alias else f"{self.system}:v{self.number}"


def default_targets(catalog: Catalog) -> list[Target]:
    """``SYSTEM@champion`` for every system that has a ``champion`` alias."""
    return [Target(a.system, alias=a.name) for a in catalog.list_aliases() if a.name == "champion"]
