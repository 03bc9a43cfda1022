"""The regrow exception tree.

Every error regrow raises on purpose is a :class:`RegrowError`. Each subclass also inherits the
builtin a caller would naturally catch, so ``except LookupError`` keeps working::

    RegrowError
    ├── ConfigError (ValueError)                bad configuration file, URL or option
    │   ├── WorkspaceNotFound (FileNotFoundError) no workspace where one was expected
    │   └── PolicyError                         a policy file that does not validate (names the key)
    ├── DataError (ValueError)                  malformed data
    │   ├── SchemaError                         a schema violation or a bad schema declaration
    │   │   └── IncompatibleSchema              a snapshot refused: its name's schema would break
    │   └── SliceError                          a slice filter that does not apply to the data
    ├── SystemSpecError (ValueError)            an invalid system graph (cycle, unknown column, ...)
    ├── ComponentError (RuntimeError)           a component failed to fit or predict
    ├── CatalogError                            the catalog refused an operation
    │   ├── NotFound (LookupError)              an unknown snapshot, version, run, alias ...
    │   │   └── VersionNotFound
    │   ├── AliasConflict (RuntimeError)        a compare-and-set alias move lost a race
    │   ├── AuditChainBroken (RuntimeError)     the audit log's hash chain does not verify
    │   └── PromotionRefused                    a promotion the policy does not allow (names
    │                                           every missing gate or approval)
    ├── AuthError (PermissionError)             who is acting is unknown: a malformed, unknown or
    │   │                                       revoked token, an unknown or revoked identity
    │   └── PermissionDenied                    the identity's role does not allow the operation
    ├── StoreError                              the artifact store refused an operation
    │   ├── ArtifactNotFound (LookupError)
    │   ├── ArtifactCorrupted (ValueError)      the bytes read do not hash to their key
    │   └── InvalidKey (ValueError)             a key that is not a sha256 digest
    ├── PlanError (ValueError)                  a plan or action that cannot be built or run
    ├── RunError (RuntimeError)                 a run failed; names the component and cause
    │   └── CannotRebuild                       a lost artifact cannot be refitted from its record
    └── MissingDependency (ImportError)         an optional extra is not installed

    RegrowWarning (UserWarning)                 root of the warnings regrow emits
    └── DataQualityWarning                      nulls, values read as another type, infinities

Every message names the offending value and says what to do instead.

>>> from regrow.errors import VersionNotFound
>>> err = VersionNotFound("churn:v9", hint="list versions with `regrow versions churn`")
>>> isinstance(err, LookupError)
True
>>> print(err)
unknown version 'churn:v9'; list versions with `regrow versions churn`
"""

from __future__ import annotations

__all__ = [
    "AliasConflict",
    "ArtifactCorrupted",
    "ArtifactNotFound",
    "AuditChainBroken",
    "AuthError",
    "CannotRebuild",
    "CatalogError",
    "ComponentError",
    "ConfigError",
    "DataError",
    "DataQualityWarning",
    "IncompatibleSchema",
    "InvalidKey",
    "MissingDependency",
    "NotFound",
    "PermissionDenied",
    "PlanError",
    "PolicyError",
    "PromotionRefused",
    "RegrowError",
    "RegrowWarning",
    "RunError",
    "SchemaError",
    "SliceError",
    "StoreError",
    "SystemSpecError",
    "VersionNotFound",
    "WorkspaceNotFound",
]


class RegrowError(Exception):
    """Root of every error regrow raises on purpose.

    ``message`` says what is wrong and names the value; ``hint`` says what to do instead.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}; {hint}" if hint else message)


class ConfigError(RegrowError, ValueError):
    """A bad configuration file, URL, option or policy value."""


class WorkspaceNotFound(ConfigError, FileNotFoundError):
    """No regrow workspace exists where one was expected."""


class DataError(RegrowError, ValueError):
    """Malformed input data: unreadable files, wrong types, empty frames."""


class SchemaError(DataError):
    """Data that violates its schema, or a schema declaration that makes no sense."""


class IncompatibleSchema(SchemaError):
    """A snapshot refused because it would break its name's schema: a removed column, a
    changed type, or nulls in the target. ``problems`` lists them, ``changes`` is the diff."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        problems: tuple[str, ...] = (),
        changes: tuple[str, ...] = (),
    ) -> None:
        self.problems = problems
        self.changes = changes
        super().__init__(message, hint=hint)


class SliceError(DataError):
    """A named slice whose filter does not apply to the data."""


class SystemSpecError(RegrowError, ValueError):
    """An invalid system graph: cycles, unknown columns, duplicate names, no target."""


class ComponentError(RegrowError, RuntimeError):
    """A component failed to fit, predict or load."""


class CatalogError(RegrowError):
    """The catalog refused an operation."""


class NotFound(CatalogError, LookupError):
    """An unknown snapshot, version, run, alias or component."""

    def __init__(self, what: str, ref: str, *, hint: str | None = None) -> None:
        self.ref = ref
        super().__init__(f"unknown {what} {ref!r}", hint=hint)


class VersionNotFound(NotFound):
    """An unknown system or component version."""

    def __init__(self, ref: str, *, hint: str | None = None) -> None:
        super().__init__("version", ref, hint=hint)


class AliasConflict(CatalogError, RuntimeError):
    """A compare-and-set alias move found the alias moved by someone else first."""


class AuditChainBroken(CatalogError, RuntimeError):
    """The audit log's hash chain does not verify: an event was altered or removed."""


class PromotionRefused(CatalogError):
    """A promotion the policy does not allow: the message names every missing gate or
    approval (the refusal is itself audited, and nothing moves)."""


class AuthError(RegrowError, PermissionError):
    """Who is acting cannot be established: a malformed, unknown or revoked token, or an
    unknown or revoked identity."""


class PermissionDenied(AuthError):
    """The acting identity's role does not allow the operation (names the role it needs)."""


class StoreError(RegrowError):
    """The artifact store refused an operation."""


class ArtifactNotFound(StoreError, LookupError):
    """No artifact is stored under the key."""


class ArtifactCorrupted(StoreError, ValueError):
    """The bytes read from the store do not hash to their key: the artifact was altered."""


class InvalidKey(StoreError, ValueError):
    """A store key that is not a lowercase sha256 hex digest (and so could escape the root)."""


class PolicyError(ConfigError):
    """A policy file that does not validate; the message names the key and the value."""


class PlanError(RegrowError, ValueError):
    """A plan or an action that cannot be built or run as asked."""


class RunError(RegrowError, RuntimeError):
    """A run failed; the message names the component and the cause."""


class CannotRebuild(RunError):
    """A component version whose artifact was lost cannot be refitted from its record (its
    data, an upstream artifact or its estimator's definition is gone too)."""


class MissingDependency(RegrowError, ImportError):
    """An optional dependency is not installed; the hint gives the exact pip command."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package!r} is not installed",
            hint=f"install it with: pip install 'regrow[{extra}]'",
        )


class RegrowWarning(UserWarning):
    """Root of the warnings regrow emits; filter them with ``warnings.simplefilter``."""


class DataQualityWarning(RegrowWarning):
    """Data was stored, but some of it deserves a look: nulls, values read as another type,
    infinities stored as nulls. ``notes`` holds one line per finding."""

    def __init__(self, message: str, notes: tuple[str, ...] = ()) -> None:
        self.notes = notes
        super().__init__(message)
