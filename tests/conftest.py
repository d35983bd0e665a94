"""For every test module: the machine's own network namespace is left as it was found. Tests
build their networks in simulated hosts (namespaces of their own); a Shoal link (bridge, veth,
vxlan) or nftables table left in the machine's namespace fails the module that left it, by name,
and is removed so the next module starts clean."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

# Shoal's own names: the default and gateway bridges, user bridges, overlay and veth devices,
# and its nftables tables (shoal_br, shoal_gw, shoal_mesh, shoal_lb).
_LINK = re.compile(r"^(shoal|shbr|shvx|shv|shgw|br-[0-9a-f]{12}$)")
_TABLE = re.compile(r"^shoal_")


def _links() -> set[str]:
    try:
        return {n for n in os.listdir("/sys/class/net") if _LINK.match(n)}
    except OSError:
        return set()


def _tables() -> set[str]:
    try:
        out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=10,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return set()
    # "table ip shoal_br" -> "ip shoal_br"
    return {" ".join(line.split()[1:3]) for line in out.splitlines()
            if len(line.split()) == 3 and _TABLE.match(line.split()[2])}


def _in_machine_netns() -> bool:
    """Only a root test process in the machine's namespace has anything to compare."""
    try:
        return os.geteuid() == 0 and os.readlink("/proc/self/ns/net") == os.readlink("/proc/1/ns/net")
    except OSError:
        return False


@pytest.fixture(autouse=True, scope="module")
def machine_netns_untouched(request: pytest.FixtureRequest) -> Iterator[None]:
    if not _in_machine_netns():
        yield
        return
    links, tables = _links(), _tables()
    yield
    new_links, new_tables = sorted(_links() - links), sorted(_tables() - tables)
    for name in new_links:
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
    for table in new_tables:
        subprocess.run(["nft", "delete", "table", *table.split()], capture_output=True, check=False)
    if new_links or new_tables:
        module = Path(str(request.node.path)).name
        pytest.fail(f"{module} left in the machine's network namespace: links {new_links}, "
                    f"nftables tables {new_tables} (removed)")
