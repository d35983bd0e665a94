"""The API over TCP: TLS with client certificates (dockerd's --tlsverify) for the docker CLI;
plain HTTP is refused on anything but loopback (there is no insecure mode)."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from shoal.dev.local import SHOAL, SHOALD
from shoal.dev.wait import wait_for
from shoal.store.etcd.testing import free_port, make_pki


def _docker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=30,
                          check=False)


def test_tlsverify_api_and_no_plain_tcp_off_loopback(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", cn="shoaltest-api")
    certs = tmp_path / "client"
    certs.mkdir()
    shutil.copy(pki.ca_file, certs / "ca.pem")
    shutil.copy(pki.cert_file, certs / "cert.pem")
    shutil.copy(pki.key_file, certs / "key.pem")
    port = free_port()
    base = SHOALD + ["--data-root", str(tmp_path / "data"), "--exec-root", str(tmp_path / "exec"),
                     "--hostname", "shoaltest-tls", "--executor", "sim"]  # no bridge in this namespace
    refused = subprocess.run(base + ["-H", f"tcp://0.0.0.0:{port}"], capture_output=True, text=True, timeout=30,
                             check=False)
    assert refused.returncode == 1 and "without TLS" in refused.stderr

    proc = subprocess.Popen(base + ["-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(pki.ca_file),
                                    "--tlscert", str(pki.cert_file), "--tlskey", str(pki.key_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        host = {"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}
        tls = {**host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs)}
        out = wait_for("the TLS API", lambda: _docker(tls, "info", "--format", "{{.Name}}").stdout.strip() or None)
        assert out == "shoaltest-tls"
        shoal = subprocess.run(SHOAL + ["-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert",
                                        str(pki.ca_file), "--tlscert", str(pki.cert_file), "--tlskey",
                                        str(pki.key_file), "network", "ls", "--format", "{{.Name}}"],
                               capture_output=True, text=True, timeout=30, check=False)
        assert shoal.returncode == 0 and "bridge" in shoal.stdout, shoal.stderr
        # Plain HTTP to a TLS port gets nothing (`network ls`: Debian 13's docker CLI 26 exits 0
        # from `info` when the daemon cannot be reached).
        plain = _docker(host, "network", "ls", "--format", "{{.Name}}")
        assert plain.returncode != 0 and "bridge" not in plain.stdout, plain
        no_client_cert = ssl.create_default_context(cafile=str(pki.ca_file))
        with pytest.raises((httpx.TransportError, ssl.SSLError)):
            httpx.get(f"https://127.0.0.1:{port}/info", verify=no_client_cert, timeout=10).raise_for_status()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
