"""What both etcd clients (``client.py``: the JSON gateway, ``grpc_client.py``: gRPC) share:
the endpoint check, and closing at the end of ``async with``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from shoal.errors import InvalidArgument


def https_endpoints(endpoints: Sequence[str]) -> tuple[str, ...]:
    """``endpoints`` without a trailing slash; InvalidArgument unless all are https:// URLs."""
    if not endpoints or any(not e.startswith("https://") for e in endpoints):
        raise InvalidArgument(f"etcd endpoints must be https:// URLs, got {list(endpoints)}")
    return tuple(e.rstrip("/") for e in endpoints)


class ClosingClient(ABC):
    """Use as ``async with client:`` or call ``close()``."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @abstractmethod
    async def close(self) -> None:
        """End every connection; calls still running end with Unavailable."""
