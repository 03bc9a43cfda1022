"""The errors of the serving app, each with the HTTP status it answers with.

They are :class:`~regrow.errors.RegrowError`\\ s like any other (a message naming the value, a
hint saying what to do) with a ``status``; the app turns every one into a JSON body
``{"error": "<message>; <hint>"}`` with that status::

    ServeError                                     status
    ├── BadRequest (ValueError)                    400  a request the protocol or the model's
    │                                                   signature does not accept
    ├── ModelNotFound (LookupError)                404  an unknown model or model version
    ├── PayloadTooLarge (ValueError)               413  a body or a batch over the limits
    └── NotReady (RuntimeError)                    503  the model is still loading

:class:`~regrow.errors.AuthError` answers 401 and
:class:`~regrow.errors.PermissionDenied` 403 (:func:`status_of`).

>>> err = BadRequest("input 'age' has 3 values for shape [2]", hint="send 2 values")
>>> err.status, str(err)
(400, "input 'age' has 3 values for shape [2]; send 2 values")
>>> status_of(ModelNotFound("unknown model 'x'")), status_of(KeyError("x"))
(404, 500)
"""

from __future__ import annotations

from typing import ClassVar

from regrow.errors import AuthError, PermissionDenied, RegrowError

__all__ = ["BadRequest", "ModelNotFound", "NotReady", "PayloadTooLarge", "ServeError", "status_of"]


class ServeError(RegrowError):
    """An error of the serving app; ``status`` is its HTTP status."""

    status: ClassVar[int] = 500


class BadRequest(ServeError, ValueError):
    """A request the protocol, or the served version's signature, does not accept."""

    status = 400


class ModelNotFound(ServeError, LookupError):
    """An unknown model (system) or model version (alias or version) of this server."""

    status = 404


class PayloadTooLarge(ServeError, ValueError):
    """A body over ``max_request_bytes``, or a request over ``max_batch_rows`` rows."""

    status = 413


class NotReady(ServeError, RuntimeError):
    """The model is not loaded yet (or could not be loaded)."""

    status = 503


def status_of(error: BaseException) -> int:
    """The HTTP status ``error`` answers with (500 for what is not a known error)."""
    if isinstance(error, ServeError):
        return error.status
    if isinstance(error, PermissionDenied):
        return 403
    if isinstance(error, AuthError):
        return 401
    return 500
