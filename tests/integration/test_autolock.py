"""Autolock end to end with the docker CLI: ``swarm init --autolock``; a restarted manager is
locked (Docker's 503 on swarm calls, ``locked`` in ``docker info``) until ``docker swarm unlock``
with the right key (read from stdin); the secret made before is still there and opens for a
task; ``unlock-key --rotate`` makes the new key the only one that works after the next restart;
a manager that joins writes its files wrapped at once, re-wraps on a rotation through the
store, and has them in clear again once demoted; a worker is never locked; ``--autolock=false``
lets a restart run at once. Neither the unlock key, the store DEK, the secret nor a manager's
TLS key is ever on disk in clear.

Run alone (about 20 s, sim executor, loopback 127.0.85.N): PYTHONPATH=. .venv/bin/python -m pytest -q
-p no:cacheprovider tests/integration/test_autolock.py
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from shoal.manager.deks import LocalKeys
from shoal.pki.identity import key_is_encrypted
from shoal.pki.unlockkey import LOCKED, InvalidUnlockKey, UnlockKey

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-lock"
BASE_IP = "127.0.85"
SECRET = b"autolock-secret-payload-7f3a"


def _swarm_dir(d: Daemon) -> Path:
    return d.root / "data" / "swarm"


def _state(d: Daemon) -> str:
    return str(d.api("/info")["Swarm"]["LocalNodeState"])


def _restart(d: Daemon) -> None:
    d.stop()  # SIGTERM
    d.start()


def _unlock(d: Daemon, key: str) -> tuple[int, str]:
    res = d.exec("docker", "swarm", "unlock", input=key + "\n")
    return res.returncode, res.stderr.strip()


def _files_holding(root: Path, *needles: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and not p.is_symlink()
            and any(n in p.read_bytes() for n in needles)]


def _open_keys(d: Daemon, key: str) -> LocalKeys | None:
    try:
        return LocalKeys.load(_swarm_dir(d), UnlockKey.parse(key))
    except InvalidUnlockKey:
        return None


def test_autolock(swarm: Swarm) -> None:
    m = swarm.add()
    out = m.docker("swarm", "init", "--autolock", "--advertise-addr", m.ip, "--dispatcher-heartbeat", "1s").stdout
    key = m.docker("swarm", "unlock-key", "-q").stdout.strip()
    assert key.startswith("SWMKEY-1-") and f"\n    {key}\n" in out
    assert key_is_encrypted(_swarm_dir(m) / "certificates")
    m.exec("docker", "secret", "create", "pw", "-", input=SECRET.decode(), check=True)
    token = m.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    w = swarm.add()
    w.docker("swarm", "join", "--token", token, "--advertise-addr", w.ip, f"{m.ip}:2377")
    wait_for("2 nodes ready", lambda: m.docker("node", "ls").stdout.count("Ready") == 2)

    # A restarted manager is locked: every swarm call says so, docker info shows it.
    _restart(m)
    assert _state(m) == "locked"
    res = m.docker("node", "ls", check=False)
    assert res.returncode == 1 and LOCKED in res.stderr
    assert "Swarm: locked" in m.docker("info").stdout
    assert _unlock(m, UnlockKey.generate().text) == (
        1, "Error response from daemon: swarm could not be unlocked: invalid key provided")
    assert _unlock(m, "SWMKEY-1-nonsense")[1] == "Error response from daemon: invalid key string"
    assert _state(m) == "locked"
    # A worker is never locked.
    _restart(w)
    assert _state(w) != "locked" and not key_is_encrypted(_swarm_dir(w) / "certificates")

    # The right key unlocks; the secret made before is listed and opens for a task.
    assert _unlock(m, key) == (0, "")
    wait_for("manager active", lambda: _state(m) == "active" and "Ready" in m.docker("node", "ls").stdout)
    assert m.docker("secret", "ls", "--format", "{{.Name}}").stdout.split() == ["pw"]
    assert _unlock(m, key) == (1, "Error: swarm is not locked")
    m.docker("service", "create", "-d", "--name", "uses-pw", "--secret", "pw", "busybox")
    wait_for("uses-pw 1/1", lambda: "1/1" in m.docker("service", "ls", "--filter", "name=uses-pw").stdout)

    # A second manager joins: its files are wrapped from the start.
    m2 = swarm.add()
    manager_token = m.docker("swarm", "join-token", "-q", "manager").stdout.strip()
    m2.docker("swarm", "join", "--token", manager_token, "--advertise-addr", m2.ip, f"{m.ip}:2377")
    wait_for("m2 a manager", lambda: m2.api("/info")["Swarm"]["ControlAvailable"], timeout=60)
    assert _open_keys(m2, key) is not None and key_is_encrypted(_swarm_dir(m2) / "certificates")

    # Rotation: the new key, and the other manager re-wraps through the store.
    new = m.docker("swarm", "unlock-key", "--rotate", "-q").stdout.strip()
    assert new.startswith("SWMKEY-1-") and new != key
    assert _open_keys(m, new) is not None and _open_keys(m, key) is None
    wait_for("m2 re-wrapped", lambda: _open_keys(m2, new) is not None)
    assert _open_keys(m2, key) is None

    # Nothing in clear on disk: the keys, the DEK (raw and base64), the secret, the TLS key.
    local = _open_keys(m, new)
    assert local is not None
    needles = (key.encode(), new.encode(), local.dek.key, local.dek.text.encode(), SECRET,
               base64.b64encode(SECRET))
    for d in (m, m2, w):
        assert _files_holding(d.root, *needles) == []
    for d in (m, m2):  # (a worker's TLS key is in clear, as Docker's)
        assert _files_holding(_swarm_dir(d) / "certificates", b"BEGIN PRIVATE KEY") == []

    # Demoted, a manager's TLS key is in clear again and its DEK gone (workers are not locked).
    m.docker("node", "demote", m2.hostname)
    wait_for("m2 a worker", lambda: not (_swarm_dir(m2) / "manager").exists()
             and not m2.api("/info")["Swarm"]["ControlAvailable"], timeout=60)
    assert not key_is_encrypted(_swarm_dir(m2) / "certificates")

    # A restart: only the new key unlocks.
    _restart(m)
    assert _state(m) == "locked"
    assert _unlock(m, key)[0] == 1
    assert _unlock(m, new) == (0, "")
    wait_for("manager active", lambda: _state(m) == "active" and "Ready" in m.docker("node", "ls").stdout)

    # Autolock off: the files are in clear again, and a restart runs at once.
    assert m.docker("swarm", "update", "--autolock=false").stdout == "Swarm updated.\n"
    assert not key_is_encrypted(_swarm_dir(m) / "certificates")
    assert "no unlock key is set" in m.docker("swarm", "unlock-key", check=False).stderr
    _restart(m)
    wait_for("manager active without unlock", lambda: _state(m) == "active")
    wait_for("node ls", lambda: "Ready" in m.docker("node", "ls").stdout)
