"""A local OCI registry for ``shoal dev`` and the tests: Debian's ``docker-registry`` (2.8) on a
loopback address, or inside a simulated host's network namespace (shoal.dev.hosts), no auth,
storage under a directory of ours, and a minimal push over httpx. In a namespace, the registry is
reached from this process through sockets made by a thread that entered that namespace.

Push (reference linux.md section 6): ``HEAD`` each blob and skip it if present, else ``POST
/blobs/uploads/`` then ``PUT <Location>&digest=...`` with the bytes; then ``PUT`` the manifest
with its media type. The registry answers an OCI manifest only to a client that accepts it.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from shoal.dev.hosts import nsenter
from shoal.dev.images import MANIFEST_TYPE, DemoImage
from shoal.dev.procs import alive, terminate
from shoal.image.store import digest_of
from shoal.net import netns

__all__ = ["REGISTRY_BIN", "LocalRegistry", "RegistryError", "check_free", "push_blob",
           "push_manifest"]

REGISTRY_BIN = "docker-registry"
T = TypeVar("T")


class RegistryError(Exception):
    """The registry did not start, or refused a push."""


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    """Upload ``data`` to ``repo`` unless the registry has it already; returns its digest."""
    digest = digest_of(data)
    if client.head(f"/v2/{repo}/blobs/{digest}").status_code == 200:
        return digest
    start = client.post(f"/v2/{repo}/blobs/uploads/")
    if start.status_code != 202:
        raise RegistryError(f"blob upload to {repo} refused: {start.status_code} {start.text.strip()}")
    location = start.headers["Location"]
    sep = "&" if "?" in location else "?"
    done = client.put(f"{location}{sep}digest={digest}", content=data,
                      headers={"Content-Type": "application/octet-stream"})
    if done.status_code != 201:
        raise RegistryError(f"blob {digest} to {repo}: {done.status_code} {done.text.strip()}")
    return digest


def push_manifest(client: httpx.Client, repo: str, tag: str, manifest: bytes,
                  media_type: str = MANIFEST_TYPE) -> str:
    """Store ``manifest`` as ``repo:tag``; returns its digest."""
    r = client.put(f"/v2/{repo}/manifests/{tag}", content=manifest,
                   headers={"Content-Type": media_type})
    if r.status_code != 201:
        raise RegistryError(f"manifest {repo}:{tag}: {r.status_code} {r.text.strip()}")
    return digest_of(manifest)


def _config_yaml(data: Path, addr: str) -> str:
    return (
        "# written by shoal dev: no auth, loopback or a simulated host only\n"
        "version: 0.1\n"
        "log: {level: warn, accesslog: {disabled: true}}\n"
        "storage:\n"
        f"  filesystem: {{rootdirectory: \"{data}\"}}\n"
        "  delete: {enabled: true}\n"
        "  maintenance: {uploadpurging: {enabled: false}}\n"
        f"http: {{addr: \"{addr}\"}}\n"
    )


def check_free(addr: str) -> None:
    """Fail unless ``IP:PORT`` can be bound (something else, another registry say, may answer
    there otherwise)."""
    host, _, port = addr.rpartition(":")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is fine
        try:
            s.bind((host, int(port)))
        except OSError as exc:
            raise RegistryError(f"{addr} is in use ({exc.strerror})") from None


def _check_addr(addr: str, loopback: bool) -> None:
    host, sep, port = addr.rpartition(":")
    try:
        ok = bool(sep) and port.isdigit() and (ipaddress.ip_address(host).is_loopback
                                              or not loopback)
    except ValueError:
        ok = False
    if not ok:
        raise RegistryError(f"registry address {addr!r} is not a "
                            f"{'loopback ' if loopback else ''}IP:PORT")


class LocalRegistry:
    """``docker-registry serve`` on ``addr`` (a loopback ``IP:PORT``, or any ``IP:PORT`` inside
    the network namespace at ``netns``) with its config, data and log under ``root``. Started in
    a session of its own, so it outlives the command that started it; ``stop`` (or ``stop_pid``
    from another process) kills it by pid."""

    def __init__(self, root: Path, addr: str, pid: int = 0, *, netns: str | None = None) -> None:
        _check_addr(addr, loopback=netns is None)
        self.root = root
        self.addr = addr
        self.pid = pid
        self.netns = netns  # a namespace path (/run/netns/NAME), or None: this namespace
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.root / "config.yml"

    @property
    def log(self) -> Path:
        return self.root / "registry.log"

    @property
    def url(self) -> str:
        return f"http://{self.addr}"

    def start(self, timeout: float = 20.0) -> None:
        """Write the config, start the registry, wait until ``GET /v2/`` answers 200."""
        binary = shutil.which(REGISTRY_BIN)
        if binary is None:
            raise RegistryError(f"{REGISTRY_BIN} is not installed (apt-get install docker-registry)")
        self._here(lambda: check_free(self.addr))
        self.root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(_config_yaml(self.root / "data", self.addr))
        argv = [binary, "serve", str(self.config)]
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(nsenter(self.netns) + argv if self.netns else argv,
                                          stdout=log,
                                          stderr=log, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        self.pid = self._proc.pid
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RegistryError(f"the registry exited ({self._proc.returncode}): {self._tail()}")
            try:
                if self._here(lambda: httpx.get(f"{self.url}/v2/", timeout=1).status_code) == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RegistryError(f"the registry did not answer on {self.addr} within "
                                    f"{timeout:.0f}s: {self._tail()}")
            time.sleep(0.1)

    def _tail(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines() if self.log.exists() else []
        return lines[-1] if lines else "no output"

    def _here(self, fn: Callable[[], T]) -> T:
        """``fn()`` where the registry's address is reachable: its namespace, if it has one
        (sockets made there stay there)."""
        return netns.run_in(self.netns, fn) if self.netns else fn()

    def running(self) -> bool:
        return alive(self.pid, str(self.config))

    def push(self, image: DemoImage, timeout: float = 60.0) -> str:
        """Push ``image`` as ``<addr>/<name>:<tag>``; returns the manifest digest."""
        def push() -> str:
            with httpx.Client(base_url=self.url, timeout=timeout) as client:
                for data in (image.config, *image.layers):
                    push_blob(client, image.name, data)
                return push_manifest(client, image.name, image.tag, image.manifest)
        return self._here(push)

    def get(self, path: str, headers: dict[str, str] | None = None,
            timeout: float = 10.0) -> httpx.Response:
        """``GET <registry>/<path>`` (read in full), from the registry's namespace."""
        return self._here(lambda: httpx.get(f"{self.url}{path}", headers=headers,
                                            timeout=timeout))

    def catalog(self) -> list[str]:
        r = self.get("/v2/_catalog", timeout=5)
        r.raise_for_status()
        repos: list[str] = r.json().get("repositories") or []
        return repos

    def stop(self) -> None:
        """Kill the registry (SIGTERM, then SIGKILL) and wait for it."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=10)
            self._proc = None
        elif self.pid:
            terminate(self.pid, str(self.config), timeout=10)
        self.pid = 0
