#!/usr/bin/env python3
"""The non-API ports fuzzed for longer than the CI tier (tests/integration/test_port_fuzz.py):
the swarm port of a real manager (a manager and a worker, sim executor, heartbeat 1 s, on
127.0.103.x), and, in this process, a real gossip node (with a peer) and a real embedded DNS
server (gossip and DNS run in shoald only with the runc executor in a simulated host).

    PYTHONPATH=. .venv/bin/python bench/bench_port_fuzz.py [N [ROUNDS]]  # inputs per kind (2000), rounds (3)

Prints the inputs sent per port, the answers by kind (``port:how``: status codes, session close
codes, DNS rcodes, gossip drops), the failures, the manager's RSS before and after each round of
the swarm port (each the same inputs' kinds, a new seed), and whether the real worker stayed Ready. Exits 1 on any failure.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "unit"))

from shoal.dev.local import Swarm  # noqa: E402
from shoal.dev.wait import wait_for_async  # noqa: E402
from shoal.net.dns import DNSServer, Resolver  # noqa: E402
from shoal.net.gossip import GossipConfig, GossipNode  # noqa: E402
from tests.fuzz.portfuzz import Report, fuzz_dns, fuzz_gossip  # noqa: E402
from tests.integration.test_port_fuzz import fuzz, rss_kib  # noqa: E402
from tests.unit.net.test_dns_fuzz import Records  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
KEY = bytes(range(32))


async def local_ports(report: Report, n: int) -> list[str]:
    broken = []
    target = GossipNode(GossipConfig.fast("n1"), [KEY])
    peer = GossipNode(GossipConfig.fast("n2"), [KEY])
    await target.start()
    await peer.start()
    try:
        await peer.join([target.addr])
        await fuzz_gossip(target.addr, KEY, report, n=n, connections=200)
        peer.set("t", "after", b"v")
        try:
            await wait_for_async("gossip after the run", lambda: target.get("t", "after") == b"v", timeout=10)
        except AssertionError as exc:
            broken.append(str(exc))
        print("gossip node stats:", target.stats)
    finally:
        await peer.close()
        await target.close()
    async with DNSServer(Resolver(Records()), "c1", host="127.0.0.1", port=0, idle=0.5) as dns:
        assert dns.udp_address is not None and dns.tcp_address is not None
        await fuzz_dns(dns.udp_address, dns.tcp_address, ["api", "tasks.web", "1.9.0.10.in-addr.arpa"],
                       report, n=n)
    return broken


def main(swarm: Swarm) -> int:
    from tests.integration.conftest import init_swarm
    manager, (worker,) = init_swarm(swarm, 1)
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    worker_id = worker.docker("info", "-f", "{{.Swarm.NodeID}}").stdout.strip()
    report = Report()
    rss = [rss_kib(manager)]
    start = time.monotonic()
    cut = 0
    for seed in range(ROUNDS):  # the same amount each round: RSS should level off, not climb
        cut += asyncio.run(fuzz(manager, token, report, N, hold=12.0, seed=seed))
        rss.append(rss_kib(manager))
    swarm_seconds = time.monotonic() - start
    start = time.monotonic()
    broken = asyncio.run(local_ports(report, N))
    local_seconds = time.monotonic() - start
    nodes = manager.docker("node", "ls", "--format", "{{.ID}} {{.Status}}", check=False).stdout
    if f"{worker_id} Ready" not in nodes:
        broken.append(f"the real worker is not Ready: {nodes}")
    if any(worker_id in line and "->down" in line for line in manager.log.read_text(errors="replace").splitlines()):
        broken.append("the real worker was marked down during the run")
    if cut != 20 * ROUNDS:
        broken.append(f"slow senders cut off: {cut}/{20 * ROUNDS}")
    for port in sorted(report.sent):
        print(f"{port}: {report.sent[port]} inputs")
        for key, count in sorted(report.outcomes.items()):
            if key.startswith(port + ":"):
                print(f"    {key[len(port) + 1:]}: {count}")
    for line in report.failures:
        print("FAIL", line)
    for line in broken:
        print("BROKEN", line)
    print(f"manager RSS (KiB) before and after each round: {' '.join(map(str, rss))}; swarm port {swarm_seconds:.0f} s; "
          f"gossip and DNS in process {local_seconds:.0f} s; {len(report.failures)} failures, {len(broken)} broken")
    return 1 if report.failures or broken else 0


if __name__ == "__main__":
    tmp = Path(tempfile.mkdtemp(prefix="shoaltest-pfz-bench-"))
    s = Swarm(tmp, base_ip="127.0.103", prefix="shoaltest-pfz")
    try:
        code = main(s)
    finally:
        s.close()
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(code)
