"""``shoal swarm ...`` end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import Shoal
from ..fake_daemon import FakeDaemon


@pytest.fixture
def daemon() -> FakeDaemon:
    return FakeDaemon(swarm=False)


def test_init(shoal: Shoal, daemon: FakeDaemon) -> None:
    result = shoal("swarm", "init", "--advertise-addr", "127.0.0.1")
    assert result.status == 0
    node_id = daemon.nodes[0]["ID"]
    assert result.out == (
        f"Swarm initialized: current node ({node_id}) is now a manager.\n\n"
        "To add a worker to this swarm, run the following command:\n\n"
        "    shoal swarm join --token SWMTKN-1-worker 127.0.0.1:2377\n\n"
        "To add a manager to this swarm, run 'shoal swarm join-token manager' and follow the instructions.\n"
    )
    assert daemon.calls("POST")[0][3] == {
        "ListenAddr": "0.0.0.0:2377",
        "AdvertiseAddr": "127.0.0.1",
        "DataPathAddr": "",
        "DataPathPort": 0,
        "ForceNewCluster": False,
        "Spec": {
            "Labels": None,
            "Orchestration": {},
            "Raft": {"ElectionTick": 0, "HeartbeatTick": 0},
            "Dispatcher": {},
            "CAConfig": {},
            "TaskDefaults": {},
            "EncryptionConfig": {"AutoLockManagers": False},
        },
        "AutoLockManagers": False,
        "Availability": "",
        "DefaultAddrPool": [],
        "SubnetSize": 24,
    }
    again = shoal("swarm", "init")
    assert again.status == 1
    assert again.err.startswith("Error response from daemon: This node is already part of a swarm.")


def test_init_flags_and_autolock(shoal: Shoal, daemon: FakeDaemon) -> None:
    result = shoal(
        "swarm",
        "init",
        "--listen-addr",
        "10.0.0.5",
        "--availability",
        "drain",
        "--default-addr-pool",
        "10.10.0.0/16",
        "--default-addr-pool-mask-length",
        "26",
        "--task-history-limit",
        "3",
        "--dispatcher-heartbeat",
        "10s",
        "--autolock",
    )
    body = daemon.calls("POST")[0][3]
    assert (
        body["ListenAddr"],
        body["Availability"],
        body["DefaultAddrPool"],
        body["SubnetSize"],
    ) == ("10.0.0.5:2377", "drain", ["10.10.0.0/16"], 26)
    assert body["Spec"]["Orchestration"] == {"TaskHistoryRetentionLimit": 3}
    assert body["Spec"]["Dispatcher"] == {"HeartbeatPeriod": 10_000_000_000}
    assert body["AutoLockManagers"] is True and body["Spec"]["EncryptionConfig"] == {
        "AutoLockManagers": True
    }
    assert "    SWMKEY-1-secret\n" in result.out
    bad = shoal("swarm", "init", "--availability", "bogus")
    assert bad.err == 'invalid availability "bogus", only active, pause and drain are supported\n'


def test_join_and_leave(shoal: Shoal, daemon: FakeDaemon) -> None:
    result = shoal("swarm", "join", "--token", "T", "--listen-addr", ":4567", "10.0.0.1:2377")
    assert (result.status, result.out) == (0, "This node joined a swarm as a worker.\n")
    assert daemon.calls("POST")[0][3] == {
        "ListenAddr": "0.0.0.0:4567",
        "AdvertiseAddr": "",
        "DataPathAddr": "",
        "RemoteAddrs": ["10.0.0.1:2377"],
        "JoinToken": "T",
        "Availability": "",
    }
    assert shoal("swarm", "leave", "--force").out == "Node left the swarm.\n"
    assert daemon.calls("POST", "/swarm/leave")[0][2] == {"force": "1"}
    left = shoal("swarm", "leave")
    assert (left.status, left.err) == (
        1,
        "Error response from daemon: This node is not part of a swarm\n",
    )


def test_join_token_and_update(shoal: Shoal, daemon: FakeDaemon) -> None:
    shoal("swarm", "init")
    assert shoal("swarm", "join-token", "-q", "worker").out == "SWMTKN-1-worker\n"
    rotated = shoal("swarm", "join-token", "--rotate", "manager")
    assert rotated.out.startswith(
        "Successfully rotated manager join token.\n\n"
        "To add a manager to this swarm, run the following command:"
    )
    _, _, query, _ = daemon.calls("POST", "/swarm/update")[0]
    assert query == {
        "rotateManagerToken": "true",
        "rotateManagerUnlockKey": "false",
        "rotateWorkerToken": "false",
        "version": "1",
    }
    assert shoal("swarm", "join-token", "foo").err == "unknown role foo\n"
    assert (
        shoal("swarm", "update", "--task-history-limit", "10", "--cert-expiry", "48h").out
        == "Swarm updated.\n"
    )
    spec = daemon.calls("POST", "/swarm/update")[-1][3]
    assert spec["Orchestration"]["TaskHistoryRetentionLimit"] == 10
    assert spec["CAConfig"]["NodeCertExpiry"] == 48 * 3600 * 1_000_000_000
    assert spec["Dispatcher"] == {
        "HeartbeatPeriod": 5_000_000_000
    }  # untouched flags keep current values


URL = "https://ca.example:8888/api/v1/cfssl/sign"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_init_with_an_external_ca_and_its_root(shoal: Shoal, daemon: FakeDaemon, tmp_path: Path) -> None:
    root, key, other = tmp_path / "root.pem", tmp_path / "key.pem", tmp_path / "other.pem"
    root.write_text(PEM)
    key.write_text(PEM.replace("CERTIFICATE", "PRIVATE KEY"))
    other.write_text(PEM.replace("MIIB", "MIIC"))
    result = shoal("swarm", "init", "--ca-cert", str(root), "--external-ca", f"protocol=cfssl,url={URL}",
                   "--external-ca", f"PROTOCOL=CFSSL,URL={URL}2,cacert={other},profile=node")
    assert result.status == 0, result.err
    assert daemon.calls("POST")[0][3]["Spec"]["CAConfig"] == {
        "ExternalCAs": [
            {"Protocol": "cfssl", "URL": URL, "CACert": PEM},  # --ca-cert fills it
            {"Protocol": "cfssl", "URL": URL + "2", "CACert": other.read_text(),
             "Options": {"profile": "node"}},
        ],
        "SigningCACert": PEM,
    }
    shoal("swarm", "leave", "--force")
    shoal("swarm", "init", "--ca-cert", str(root), "--ca-key", str(key))
    config = daemon.calls("POST", "/swarm/init")[-1][3]["Spec"]["CAConfig"]
    assert config == {"SigningCACert": PEM, "SigningCAKey": key.read_text()}


@pytest.mark.parametrize(("args", "message"), [
    (["--external-ca", "protocol=acme,url=" + URL], 'invalid argument "protocol=acme,url=' + URL
     + '" for "--external-ca" flag: unrecognized external CA protocol acme'),
    (["--external-ca", "protocol=cfssl"], "the external-ca option needs a url= parameter"),
    (["--external-ca", "url=" + URL], "the external-ca option needs a protocol= parameter"),
    (["--external-ca", "protocol=cfssl,url"], "invalid field 'url' must be a key=value pair"),
    (["--external-ca", "protocol=cfssl,url=x,cacert=/nonexistent/ca.pem"],
     "unable to read CA cert for external CA: open /nonexistent/ca.pem: no such file or directory"),
    (["--ca-cert", "{notpem}"], "file contents must be in PEM format"),
    (["--external-ca", "protocol=cfssl,url=x,cacert={notpem}"], "CA cert for external CA must be in PEM format"),
    (["--ca-cert", "{root}"], "requires that a --ca-key flag and/or --external-ca flag be provided"),
])
def test_init_refuses_bad_ca_flags(shoal: Shoal, daemon: FakeDaemon, tmp_path: Path,
                                   args: list[str], message: str) -> None:
    (tmp_path / "notpem").write_text("hello")
    (tmp_path / "root").write_text(PEM)
    result = shoal("swarm", "init", *[a.format(notpem=tmp_path / "notpem", root=tmp_path / "root")
                                      for a in args])
    assert result.status != 0 and message in result.err
    assert not daemon.calls("POST")


def test_update_replaces_the_external_cas_and_info_shows_them(shoal: Shoal, daemon: FakeDaemon) -> None:
    shoal("swarm", "init")
    assert shoal("swarm", "update", "--external-ca", f"protocol=cfssl,url={URL}").status == 0
    spec = daemon.calls("POST", "/swarm/update")[-1][3]
    assert spec["CAConfig"]["ExternalCAs"] == [{"Protocol": "cfssl", "URL": URL}]
    assert "SigningCACert" not in spec["CAConfig"]
    daemon.swarm["Spec"] = spec
    assert f"   Force Rotate: 0\n   External CAs:\n     cfssl: {URL}\n  Autolock" in shoal("info").out


def test_unlock_key_rotate_and_autolock_off(shoal: Shoal, daemon: FakeDaemon) -> None:
    shoal("swarm", "init")
    refused = shoal("swarm", "unlock-key", "--rotate")
    assert (refused.status, refused.err) == (1, "cannot rotate because autolock is not turned on\n")
    assert shoal("swarm", "unlock-key").err == "no unlock key is set\n"
    on = shoal("swarm", "update", "--autolock=true")
    assert on.out.startswith("Swarm updated.\nTo unlock a swarm manager after it restarts")
    assert "    SWMKEY-1-secret\n" in on.out
    assert shoal("swarm", "unlock-key", "-q").out == "SWMKEY-1-secret\n"
    rotated = shoal("swarm", "unlock-key", "--rotate")
    assert rotated.out.startswith(
        "Successfully rotated manager unlock key.\n"
        "To unlock a swarm manager after it restarts, run the `shoal swarm unlock`\n"
        "command and provide the following key:\n\n    SWMKEY-1-secret-rotated\n\n"
    )
    assert daemon.calls("POST", "/swarm/update")[-1][2]["rotateManagerUnlockKey"] == "true"
    assert shoal("swarm", "unlock-key", "--rotate", "-q").out == "SWMKEY-1-secret-rotated-rotated\n"
    assert shoal("swarm", "update", "--autolock=false").out == "Swarm updated.\n"
    assert daemon.calls("POST", "/swarm/update")[-1][3]["EncryptionConfig"] == {"AutoLockManagers": False}


def test_unlock_reads_the_key_from_stdin(shoal: Shoal, daemon: FakeDaemon) -> None:
    not_in = shoal("swarm", "unlock")
    assert (not_in.status, not_in.err) == (1, "Error: This node is not part of a swarm\n")
    shoal("swarm", "init", "--autolock")
    active = shoal("swarm", "unlock")
    assert (active.status, active.err) == (1, "Error: swarm is not locked\n")
    daemon.locked = True
    wrong = shoal("swarm", "unlock", input="SWMKEY-1-wrong\n")
    assert (wrong.status, wrong.err) == (
        1, "Error response from daemon: swarm could not be unlocked: invalid key provided\n")
    ok = shoal("swarm", "unlock", input="SWMKEY-1-secret\n")
    assert (ok.status, ok.out) == (0, "")
    assert daemon.calls("POST", "/swarm/unlock")[-1][3] == {"UnlockKey": "SWMKEY-1-secret"}
    assert not daemon.locked


ROOT = "-----BEGIN CERTIFICATE-----\nMIIROOT\n-----END CERTIFICATE-----\n"


def _converged(daemon: FakeDaemon) -> None:
    """The swarm's TLS info, and every node's the same: a rotation that is over."""
    tls = {"TrustRoot": ROOT, "CertIssuerSubject": "MBMxETAPBgNVBAMTCHN3YXJtLWNh", "CertIssuerPublicKey": "AAAA"}
    daemon.swarm["TLSInfo"] = tls
    daemon.swarm["RootRotationInProgress"] = False
    for node in daemon.nodes:
        node.setdefault("Description", {})["TLSInfo"] = dict(tls)


def test_ca_shows_the_root_and_rotates(shoal: Shoal, daemon: FakeDaemon, tmp_path: Path) -> None:
    shoal("swarm", "init")
    _converged(daemon)
    shown = shoal("swarm", "ca")
    assert shown.status == 0 and shown.out == ROOT
    refused = shoal("swarm", "ca", "--cert-expiry", "48h")
    assert refused.status != 0 and "`--cert-expiry` flag requires the `--rotate` flag" in refused.err

    rotated = shoal("swarm", "ca", "--rotate")
    assert rotated.status == 0, rotated.err
    assert rotated.out.endswith(ROOT)  # after the progress lines, as docker prints it
    assert "desired root digest: sha256:" in rotated.out
    spec = daemon.calls("POST", "/swarm/update")[-1][3]
    assert spec["CAConfig"]["ForceRotate"] == 1 and "SigningCACert" not in spec["CAConfig"]

    cert, key = tmp_path / "root.pem", tmp_path / "key.pem"
    cert.write_text(ROOT)
    key.write_text(ROOT.replace("CERTIFICATE", "PRIVATE KEY"))
    quiet = shoal("swarm", "ca", "--rotate", "-q", "--ca-cert", str(cert), "--ca-key", str(key))
    assert quiet.status == 0 and quiet.out == ""
    config = daemon.calls("POST", "/swarm/update")[-1][3]["CAConfig"]
    assert config["SigningCACert"] == ROOT and config["SigningCAKey"] == key.read_text()
    assert config["ForceRotate"] == 1  # unchanged: a given root is the rotation, nothing to force
    external = shoal("swarm", "ca", "--rotate", "--external-ca", "protocol=cfssl,url=https://ca:8888")
    assert external.status != 0 and "requires the `--ca-cert` flag" in external.err
