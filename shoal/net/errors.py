"""The data path's one error: a netlink, mount or nft failure, carrying the kernel's (or nft's)
own message so the task's status says what went wrong."""

from __future__ import annotations

from shoal.errors import ShoalError

__all__ = ["NetError"]


class NetError(ShoalError):
    """Setting up a namespace, a link, an fdb/neighbour entry or an nft table failed."""
