"""Wait for a root CA rotation to converge, as ``docker swarm ca --rotate`` does without ``-d``
(docker/cli's ``RootRotationProgress``).

Every 200 ms: the swarm's desired TLS info and every node's; one bar counts the nodes whose
certificate has the desired issuer, the other the nodes that trust only the desired root (shown
as 0 until every certificate is right and the rotation is over). Done when both are full.
"""

from __future__ import annotations

import hashlib
from typing import Any

from shoal.cli.app import App
from shoal.cli.command import BIN
from shoal.cli.errors import Interrupted
from shoal.cli.progress.render import Progress
from shoal.cli.progress.states import Output
from shoal.cli.progress.watch import POLL_INTERVAL

__all__ = ["root_rotation_progress"]

CERTS = "  rotated TLS certificates"
ROOTS = "  rotated CA certificates"


def _tls(obj: dict[str, Any]) -> tuple[str, str, str]:
    info = obj.get("TLSInfo") or {}
    return (str(info.get("TrustRoot") or ""), str(info.get("CertIssuerSubject") or ""),
            str(info.get("CertIssuerPublicKey") or ""))


def _update(out: Output, swarm: dict[str, Any], nodes: list[dict[str, Any]], last: list[str]) -> bool:
    root, subject, key = _tls(swarm)
    digest = "sha256:" + hashlib.sha256(root.encode()).hexdigest()
    if last != [digest]:  # docker prints it every poll; once per value is enough off a terminal
        out(Progress(id="desired root digest", action=digest))
        last[:] = [digest]
    node_tls = [_tls(n.get("Description") or {}) for n in nodes]
    certs = sum(1 for _, s, k in node_tls if (s, k) == (subject, key))
    roots = sum(1 for r, _, _ in node_tls if r == root)
    total = len(nodes)
    out(Progress(id=CERTS, action="", current=certs, total=total, units="nodes"))
    if certs == total and not swarm.get("RootRotationInProgress"):
        out(Progress(id=ROOTS, action=" ", current=roots, total=total, units="nodes"))
        return roots == total
    out(Progress(id=ROOTS, action=" ", current=0, total=total, units="nodes"))
    return False


def root_rotation_progress(app: App, out: Output) -> None:
    """Poll until every node has a certificate from, and trusts only, the swarm's root; Ctrl-C
    leaves the rotation running in the background."""
    last: list[str] = []
    done = False
    try:
        while not done:
            done = _update(out, app.client.get("/swarm"), app.client.get("/nodes") or [], last)
            if not done:
                app.sleep(POLL_INTERVAL)
    except KeyboardInterrupt:
        out(Progress(message="Operation continuing in background."))
        out(Progress(message=f"Use `{BIN} swarm ca` to check progress."))
        raise Interrupted() from None
