"""One exception tree for every part of Shoal.

    ShoalError
     ├── NotFound            404  an object, by ID, name or prefix, does not exist
     ├── InvalidArgument     400  bad input: a spec, a filter, a name, an ambiguous prefix
     ├── FailedPrecondition  400  the request is valid but the state does not allow it
     ├── Conflict            409  a name or port is already taken
     ├── SequenceConflict    500  optimistic concurrency: "update out of sequence" (Docker uses 500)
     ├── Unauthenticated     401  a secret the caller gave is wrong (an unlock key)
     ├── PermissionDenied    403  a certificate or token does not allow the call
     ├── Unimplemented       501  a change Docker refuses (mode change, rename)
     └── Unavailable         503  not in a swarm, not a manager, no quorum, store down

The API maps them to status codes in one place (shoal.api.errors); everything else is a 500.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "SequenceConflict",
    "ShoalError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
]


class ShoalError(Exception):
    """Base of every error Shoal raises on purpose."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ShoalError):
    status = 404


class InvalidArgument(ShoalError):
    status = 400


class FailedPrecondition(ShoalError):
    status = 400


class Conflict(ShoalError):
    status = 409


class SequenceConflict(ShoalError):
    status = 500

    def __init__(self, message: str = "rpc error: code = Unknown desc = update out of sequence") -> None:
        super().__init__(message)


class Unauthenticated(ShoalError):
    status = 401


class PermissionDenied(ShoalError):
    status = 403


class Unimplemented(ShoalError):
    status = 501


class Unavailable(ShoalError):
    status = 503
