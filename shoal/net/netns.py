"""Network namespaces without forking: each is a bind mount of a thread's ns/net onto a file.

setns() and unshare(CLONE_NEWNET) move only the calling thread, so the work happens in a
short-lived thread (../shared/reference/linux.md section 3, the fork-free recipe: about 1 ms,
where pyroute2's netns helpers fork a process for each call). Anything that opens a netlink
socket or /proc/sys/net inside ``fn`` works in the namespace the thread entered. All calls are
synchronous; the daemon runs them through asyncio.to_thread. Needs CAP_SYS_ADMIN.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from shoal.net.errors import NetError

__all__ = ["create", "enter", "exists", "remove", "run_in", "write_sysctl"]

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MNT_DETACH = 2
NS_GET_NSTYPE = 0xB703          # ioctl on an nsfs file: its namespace type
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise NetError(f"{what}: {os.strerror(err)}")


def _in_thread(fn: Callable[[], T], name: str) -> T:
    """fn() in a fresh thread (so whatever namespace it enters dies with it); its result or
    its exception comes back to the caller."""
    result: list[T] = []
    failed: list[Exception] = []

    def body() -> None:
        try:
            result.append(fn())
        except Exception as e:  # noqa: BLE001 - raised again in the calling thread
            failed.append(e)

    thread = threading.Thread(target=body, name=name)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return result[0]


def enter(path: str | Path) -> None:
    """Move the calling thread (only it) into the namespace at ``path``: sockets and netlink
    handles it makes from then on belong there. For threads of one's own (a pool's
    initializer); `run_in` is the usual way."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise NetError(f"open netns {path}: {e.strerror}") from e
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {path}")
    finally:
        os.close(fd)


def _lo_up() -> None:
    """``ip link set lo up`` in the current thread's netns, by ioctl (no netlink needed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _umount(path: Path) -> None:
    # Bounded: a path holds one mount of ours; a few more would be someone else's stacking.
    for _ in range(4):
        if _libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
            err = ctypes.get_errno()
            if err in (errno.EINVAL, errno.ENOENT):     # not (or no longer) a mount point
                return
            raise NetError(f"umount {path}: {os.strerror(err)}")


def create(path: str | Path) -> None:
    """A new network namespace kept alive by a bind mount at ``path`` (parent directories are
    created), with ``lo`` up. Fails if ``path`` exists; leaves nothing behind on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    except FileExistsError as e:
        raise NetError(f"create netns {path}: already exists") from e

    def inside() -> None:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        own = f"/proc/self/task/{threading.get_native_id()}/ns/net"
        _check(_libc.mount(own.encode(), os.fsencode(path), None, MS_BIND, None),
               f"bind mount netns on {path}")
        _lo_up()

    try:
        _in_thread(inside, "netns-create")
    except BaseException:
        remove(path)
        raise


def remove(path: str | Path) -> None:
    """Unmount and delete ``path``; the namespace goes once nothing else holds it (its links,
    and their veth peers elsewhere, go with it). A missing path is fine."""
    path = Path(path)
    _umount(path)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        raise NetError(f"remove netns {path}: {e.strerror}") from e


def exists(path: str | Path) -> bool:
    """Whether ``path`` is a mounted network namespace (not merely a file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET
    except OSError:                     # ENOTTY: a plain file, not nsfs
        return False
    finally:
        os.close(fd)


def run_in(path: str | Path, fn: Callable[[], T]) -> T:
    """fn() in a short-lived thread that has entered the namespace at ``path``; fn's result,
    or its exception raised here."""
    def inside() -> T:
        enter(path)
        return fn()

    return _in_thread(inside, "netns-run")


def write_sysctl(key: str, value: str) -> None:
    """``sysctl -w key=value`` in the calling thread's netns: /proc/sys/net is resolved per
    thread at open time. Dotted keys ("net.ipv4.ip_forward") or slashed ones (for device
    names with dots: "net/ipv4/conf/eth0.5/forwarding")."""
    rel = key if "/" in key else key.replace(".", "/")
    target = f"/proc/sys/{rel.strip('/')}"
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise NetError(f"sysctl {key}={value}: {e.strerror}") from e
