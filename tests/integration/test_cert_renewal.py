"""Certificates renew themselves: a swarm whose certificates live 20 s (SHOAL_TEST_MIN_CERT_EXPIRY,
test only, lowers the 1 h minimum) outlives several of them. Each round waits until every node
certificate and every manager's etcd certificate was replaced, then until the ones in use at the
round's start have expired, and checks that the swarm still works: nodes Ready (and managers
Reachable), tasks running, a new service scheduled on the worker, and the swarm port and etcd
serving certificates that are valid now (so the listeners took the renewed ones).

Run from the repository (as root or not; sim executor, loopback 127.0.61.x, names
shoaltest-renew*; about 3 and 4 minutes):
    PYTHONPATH=. .venv/bin/python -m pytest -q -p no:cacheprovider tests/integration/test_cert_renewal.py
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from tests.integration.conftest import close_and_check
from tests.integration.quorum import statuses

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-renew"
EXPIRY = 20  # seconds: renewals 7.5 to 15 s after each issue (50-80% of 20 s + the 5 s backdate)
LIFETIMES = 3  # rounds, each past the expiry of the certificates in use when it began
ROUND = 4 * EXPIRY  # bound on each wait of a round


@pytest.fixture
def swarm(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Swarm]:
    monkeypatch.setenv("SHOAL_TEST_MIN_CERT_EXPIRY", "10")  # read by each shoald's control API
    s = Swarm(tmp_path_factory.mktemp(PREFIX), base_ip="127.0.61", prefix=PREFIX)
    try:
        yield s
    finally:
        close_and_check(s)


def _swarm_dir(d: Daemon) -> Path:
    return d.root / "data" / "swarm"


def _read_cert(path: Path) -> x509.Certificate:
    """Read only: the daemon is the one writer of its files (a load could finish its save)."""
    return x509.load_pem_x509_certificate(path.read_bytes())


def certificates(daemons: list[Daemon], managers: list[Daemon]) -> dict[str, x509.Certificate]:
    """Every node certificate and every manager's etcd certificate, by a readable key."""
    found = {f"{d.hostname} node": _read_cert(_swarm_dir(d) / "certificates" / "swarm-node.crt")
             for d in daemons}
    found |= {f"{d.hostname} etcd": _read_cert(_swarm_dir(d) / "etcd-tls" / "node.crt") for d in managers}
    return found


def served(host: str, port: int, ca: Path, client: tuple[Path, Path] | None = None,
           server_name: str | None = None) -> x509.Certificate:
    """The certificate a listener presents on a new connection."""

    async def handshake() -> bytes:
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.check_hostname = server_name is not None
        if client is not None:
            ctx.load_cert_chain(str(client[0]), str(client[1]))
        _, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=server_name or host)
        try:
            der: bytes = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            return der
        finally:
            writer.close()
            await writer.wait_closed()

    return x509.load_der_x509_certificate(asyncio.run(asyncio.wait_for(handshake(), 10)))


def valid_now(cert: x509.Certificate) -> bool:
    return cert.not_valid_before_utc <= datetime.now(UTC) < cert.not_valid_after_utc


def check_listeners(managers: list[Daemon]) -> None:
    """The swarm port and etcd's client port serve certificates valid now."""
    for m in managers:
        swarm_dir = _swarm_dir(m)
        swarm_cert = wait_for(f"{m.hostname}'s swarm port certificate", lambda m=m, s=swarm_dir: served(
            m.ip, 2377, s / "certificates" / "swarm-root-ca.crt", server_name="swarm-manager"))
        assert valid_now(swarm_cert), f"{m.hostname}: the swarm port serves an expired certificate"
        tls = swarm_dir / "etcd-tls"
        etcd_cert = wait_for(f"{m.hostname}'s etcd certificate", lambda m=m, t=tls: served(
            m.ip, 2379, t / "ca.crt", client=(t / "node.crt", t / "node.key")))
        assert valid_now(etcd_cert), f"{m.hostname}: etcd serves an expired certificate"


def running_on(manager: Daemon, service: str) -> list[str]:
    """The node IDs of the service's running tasks."""
    filters = json.dumps({"service": [service], "desired-state": ["running"]})
    tasks = manager.api(f"/tasks?filters={filters}")
    return [t["NodeID"] for t in tasks if t["Status"]["State"] == "running"]


def outlive_lifetimes(daemons: list[Daemon], managers: list[Daemon], worker: Daemon, *,
                      replicas: int) -> None:
    """LIFETIMES rounds of: every certificate renewed, the round's first ones expired, the
    swarm checked, a new service placed on the worker."""
    first = managers[0]
    worker_id = worker.api("/info")["Swarm"]["NodeID"]
    trust_root = wait_for("the worker's TLS info in node inspect", lambda: (
        first.api(f"/nodes/{worker_id}")["Description"].get("TLSInfo") or {}).get("TrustRoot"))
    for lifetime in range(1, LIFETIMES + 1):
        before = wait_for("the certificates on disk", lambda: certificates(daemons, managers))

        def renewed(before: dict[str, x509.Certificate] = before) -> bool:
            now = certificates(daemons, managers)
            return all(now[k].serial_number != c.serial_number
                       and now[k].not_valid_after_utc > c.not_valid_after_utc for k, c in before.items())

        wait_for(f"lifetime {lifetime}: every node and etcd certificate renewed", renewed, timeout=ROUND,
                 interval=0.5)
        last_expiry = max(c.not_valid_after_utc for c in before.values())
        wait_for(f"lifetime {lifetime}: the certificates it began with expired",
                 lambda t=last_expiry: datetime.now(UTC) > t, timeout=ROUND, interval=0.5)

        wait_for(f"lifetime {lifetime}: every node Ready in node ls", lambda: first.docker(
            "node", "ls", "--format", "{{.Status}}").stdout.split().count("Ready") == len(daemons),
            timeout=ROUND)
        wait_for(f"lifetime {lifetime}: every manager reachable",
                 lambda: statuses(first)["managers"] == len(managers), timeout=ROUND)
        wait_for(f"lifetime {lifetime}: shoaltest-renew-web still running {replicas}",
                 lambda: len(running_on(first, "shoaltest-renew-web")) == replicas, timeout=ROUND)
        check_listeners(managers)

        name = f"shoaltest-renew-new{lifetime}"
        first.docker("service", "create", "-d", "--name", name, "--constraint", "node.role==worker", "busybox")
        wait_for(f"lifetime {lifetime}: {name} running on the worker",
                 lambda n=name: running_on(first, n) == [worker_id], timeout=ROUND)
        shown = first.api(f"/nodes/{worker_id}")["Description"]["TLSInfo"]["TrustRoot"]
        assert shown == trust_root  # renewals keep the issuer: node inspect's TLS info stands


def validity(path: Path) -> float:
    cert = _read_cert(path)
    return (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()


@pytest.mark.timeout(420)
def test_a_manager_and_a_worker_outlive_several_certificate_lifetimes(swarm: Swarm) -> None:
    manager = swarm.add()
    manager.docker("swarm", "init", "--advertise-addr", manager.ip, "--dispatcher-heartbeat", "1s",
                   "--cert-expiry", f"{EXPIRY}s")
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    worker = swarm.add()
    worker.docker("swarm", "join", "--token", token, "--advertise-addr", worker.ip, f"{manager.ip}:2377")
    wait_for("both nodes ready", lambda: statuses(manager)["Ready"] == 2, timeout=30)
    # 20 s plus a quarter of it backdated, for the first certificates already
    worker_cert = _swarm_dir(worker) / "certificates" / "swarm-node.crt"
    assert validity(worker_cert) == pytest.approx(EXPIRY * 1.25, abs=1)
    manager.docker("service", "create", "-d", "--name", "shoaltest-renew-web", "--replicas", "2",
                   "--replicas-max-per-node", "1", "busybox")
    wait_for("shoaltest-renew-web on both nodes",
             lambda: len(set(running_on(manager, "shoaltest-renew-web"))) == 2, timeout=30)

    outlive_lifetimes([manager, worker], [manager], worker, replicas=2)

    # --cert-expiry applies to the next renewals; below the (test) minimum it is refused.
    manager.docker("swarm", "update", "--cert-expiry", "30s")
    wait_for("the worker's next certificate for 30 s", lambda: validity(worker_cert) == pytest.approx(37.5, abs=1),
             timeout=ROUND, interval=0.5)
    res = manager.docker("swarm", "update", "--cert-expiry", "5s", check=False)
    assert res.returncode != 0 and "minimum certificate expiry time is: 10s" in res.stderr
    assert statuses(manager)["Ready"] == 2
    log = manager.log.read_text(errors="replace")
    assert "node certificate renewed" in log and "etcd certificate renewed" in log


@pytest.mark.timeout(600)
def test_three_managers_renew_their_etcd_certificates_without_losing_quorum(swarm: Swarm) -> None:
    first = swarm.add()
    first.docker("swarm", "init", "--advertise-addr", first.ip, "--dispatcher-heartbeat", "1s",
                 "--cert-expiry", f"{EXPIRY}s")
    tokens = {role: first.docker("swarm", "join-token", "-q", role).stdout.strip() for role in ("manager", "worker")}
    for role in ("manager", "manager", "worker"):
        d = swarm.add()
        d.docker("swarm", "join", "--token", tokens[role], "--advertise-addr", d.ip, f"{first.ip}:2377", timeout=120)
    managers, worker = swarm.daemons[:3], swarm.daemons[3]
    wait_for("3 managers reachable, 4 nodes ready",
             lambda: statuses(first) == {"Ready": 4, "managers": 3}, timeout=90)
    first.docker("service", "create", "-d", "--name", "shoaltest-renew-web", "--mode", "global", "busybox")
    wait_for("shoaltest-renew-web on every node",
             lambda: len(set(running_on(first, "shoaltest-renew-web"))) == 4, timeout=60)

    outlive_lifetimes(swarm.daemons, managers, worker, replicas=4)

    # A manager restarted now starts etcd and its sessions from the renewed files alone, and its
    # etcd peers accept it: their own peer certificates were renewed in place.
    restarted = managers[2]
    restarted.stop()
    restarted.start()
    wait_for("the restarted manager reachable again, every node ready",
             lambda: statuses(first) == {"Ready": 4, "managers": 3}, timeout=90)
    # and its own copy of the store caught up, with the leader known (Docker's managers answer
    # "not ready yet" for that moment too)
    wait_for("the restarted manager's own store ready", lambda: restarted.docker(
        "node", "ls", check=False, timeout=15).returncode == 0, timeout=60, interval=0.5)
    restarted.docker("service", "create", "-d", "--name", "shoaltest-renew-after", "busybox", timeout=60)
    wait_for("a service created through the restarted manager running",
             lambda: len(running_on(first, "shoaltest-renew-after")) == 1, timeout=60)
