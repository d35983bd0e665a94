"""shoald: one daemon per machine. Flags mirror dockerd; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import shutil
import signal
import socket
import sys
from pathlib import Path

import click

from shoal import aio
from shoal.api import APITLS, build_app, serve
from shoal.daemon.metricsserver import EngineFacts, MetricsServer, parse_addr
from shoal.daemon.node import NodeSettings, SwarmNode
from shoal.daemon.pidfile import PidFile, PidFileBusy
from shoal.errors import InvalidArgument, ShoalError
from shoal.image.mirrors import validate_mirror
from shoal.model.states import NodeRole
from shoal.web import parse_web_addr, serve_web

__all__ = ["main"]

log = logging.getLogger("shoald")


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not key or not eq:
            raise click.BadParameter(f"invalid label {item!r}: expected key=value", param_hint="--label")
        out[key] = value
    return out


def _membership(node: SwarmNode) -> tuple[str, str, bool]:
    state = node.swarm_state()
    return state.cluster_id, state.node_id, state.role == NodeRole.MANAGER


async def _run(settings: NodeSettings, hosts: list[str], tls: APITLS | None,
               pidfiles: list[PidFile], *, metrics_addr: str = "",
               web_addr: tuple[str, int] | None = None) -> None:
    node = SwarmNode(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await node.start()
    metrics_server = None
    web = None
    try:
        runner = await serve(build_app(node), hosts, tls=tls)
        if metrics_addr:
            metrics_server = MetricsServer(metrics_addr, EngineFacts(
                node.hostname, containers=node.container_runtime(), swarm=lambda: _membership(node)))
            await metrics_server.start()
        if web_addr is not None:  # the API's certificate, off loopback (parse_web_addr checked)
            ip, port = web_addr
            web_tls = tls.context() if tls is not None and not _is_loopback(ip) else None
            try:
                web = await serve_web(node, ip, port, ssl_context=web_tls)
            except BaseException:
                await runner.cleanup()
                if metrics_server is not None:
                    await metrics_server.close()
                raise
    except BaseException:
        await node.stop()
        raise
    log.info("shoald ready (hostname %s, data root %s)", settings.hostname, settings.data_root)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        for pidfile in pidfiles:  # a new shoald on this data root now waits for this one
            pidfile.stopping()
        if web is not None:
            await web.cleanup()
        if metrics_server is not None:
            await metrics_server.close()
        await runner.cleanup()
        await node.stop()
        for host in hosts:
            if host.startswith("unix://"):
                Path(host[len("unix://"):]).unlink(missing_ok=True)


def _is_loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip).is_loopback


def _log_opts(opts: tuple[str, ...]) -> tuple[int, int]:
    """dockerd's json-file ``--log-opt max-size=10m --log-opt max-file=3``."""
    size, files = 10 * 1024 * 1024, 3
    units = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    for opt in opts:
        key, _, value = opt.partition("=")
        try:
            if key == "max-size":
                number = value.rstrip("bBkKmMgG")
                size = int(float(number) * units[value[len(number):].lower().rstrip("b") or ""])
            elif key == "max-file":
                files = int(value)
            else:
                raise click.UsageError(f"unknown log opt '{key}' for json-file log driver")
        except (KeyError, ValueError):
            raise click.UsageError(f"invalid value for log opt {opt!r}") from None
        if size < 1 or files < 1:
            raise click.UsageError(f"invalid value for log opt {opt!r}")
    return size, files


@click.command(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "SHOAL"})
@click.option("--data-root", default="/var/lib/shoal", show_default=True, help="Root of persistent state")
@click.option("--exec-root", default="/run/shoal/exec", show_default=True, help="Root of runtime state")
@click.option("-p", "--pidfile", default=None,
              help="Path to use for daemon PID file (besides <data-root>/shoald.pid, always held)")
@click.option("-H", "--host", "hosts", multiple=True, help="Daemon socket(s): unix://PATH or tcp://IP:PORT")
@click.option("--label", "labels", multiple=True, help="Engine label key=value (repeatable)")
@click.option("--insecure-registry", "insecure_registries", multiple=True,
              help="Registry (host[:port] or CIDR) spoken to over plain HTTP (repeatable)")
@click.option("--registry-mirror", "registry_mirrors", multiple=True,
              help="Mirror (http[s]://host[:port]) tried before Docker Hub for its images (repeatable)")
@click.option("--hostname", default=None, help="This node's hostname (default: the machine's)")
@click.option("--executor", type=click.Choice(["sim", "runc"]), default="runc", show_default=True,
              help="runc: tasks are containers; sim: tasks run no process (tests, benches)")
@click.option("--cgroup-parent", default="/shoal", show_default=True,
              help="Parent cgroup of every container (under each controller's hierarchy)")
@click.option("--log-opt", "log_opts", multiple=True,
              help="Container log limits: max-size=10m, max-file=3 (repeatable)")
@click.option("-b", "--bridge", default="", metavar="none",
              help="none: containers of tasks on no network get loopback only, not the gateway bridge")
@click.option("--metrics-addr", default="", metavar="IP:PORT",
              help="Serve Prometheus metrics on http://IP:PORT/metrics (off by default)")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("-D", "--debug", is_flag=True, help="Debug logging")
@click.option("--tls", is_flag=True, help="Serve TCP hosts with TLS (implied by --tlsverify)")
@click.option("--tlsverify", is_flag=True, help="Serve TCP hosts with TLS and require client certificates")
@click.option("--tlscacert", type=click.Path(dir_okay=False), help="CA that client certificates must chain to")
@click.option("--tlscert", type=click.Path(dir_okay=False), help="The API's TLS certificate")
@click.option("--tlskey", type=click.Path(dir_okay=False), help="The API's TLS key")
@click.option("--web-addr", default=None, metavar="IP:PORT",
              help="Serve the web view here (managers; off loopback only with the API's TLS)")
@click.option("--loop-block-limit", type=click.FloatRange(min=0), default=0, hidden=True,
              help="Log a WARNING, with its stack, for each callback that holds the event loop "
                   "longer than this many seconds (0: off; tests set SHOAL_LOOP_BLOCK_LIMIT)")
def main(data_root: str, exec_root: str, pidfile: str | None, hosts: tuple[str, ...],
         labels: tuple[str, ...],
         insecure_registries: tuple[str, ...], registry_mirrors: tuple[str, ...],
         hostname: str | None, executor: str, cgroup_parent: str, log_opts: tuple[str, ...],
         bridge: str, metrics_addr: str, log_level: str, debug: bool, tls: bool,
         tlsverify: bool, tlscacert: str | None, tlscert: str | None, tlskey: str | None,
         web_addr: str | None, loop_block_limit: float) -> None:
    """The Shoal daemon: Docker swarm mode, one per machine.

    Every flag can also come from the environment as SHOAL_<FLAG> (SHOAL_DATA_ROOT=...)."""
    logging.basicConfig(level="DEBUG" if debug else log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per registry request otherwise
    if executor == "runc" and shutil.which("runc") is None:
        raise click.UsageError("runc is not installed: apt-get install runc (or use --executor sim)")
    max_size, max_files = _log_opts(log_opts)
    if bridge not in ("", "none"):  # dockerd's names a bridge to use; only its "none" here
        raise click.UsageError(f"--bridge {bridge!r}: only \"none\" is supported")
    try:
        mirrors = [validate_mirror(m) for m in registry_mirrors]
        if metrics_addr:
            parse_addr(metrics_addr)
    except InvalidArgument as exc:
        raise click.UsageError(exc.message) from None
    settings = NodeSettings(data_root=Path(data_root), exec_root=Path(exec_root),
                            hostname=hostname or socket.gethostname(), engine_labels=_labels(labels),
                            executor=executor, insecure_registries=list(insecure_registries),
                            registry_mirrors=mirrors,
                            cgroup_parent=cgroup_parent, log_max_size=max_size,
                            log_max_files=max_files, default_bridge=bridge != "none")
    pidfiles = _hold_pidfiles(settings.data_root, pidfile)
    settings.exec_root.mkdir(parents=True, exist_ok=True)
    api_tls = None
    if tls or tlsverify:
        if not tlscert or not tlskey:
            raise click.UsageError("--tls and --tlsverify need --tlscert and --tlskey")
        api_tls = APITLS(cert=Path(tlscert), key=Path(tlskey), ca=Path(tlscacert) if tlscacert else None,
                         verify=tlsverify)
    web = None
    if web_addr:
        try:
            web = parse_web_addr(web_addr, tls=api_tls is not None)
        except InvalidArgument as exc:
            for held in pidfiles:
                held.release()
            click.echo(f"shoald: {exc.message}", err=True)
            sys.exit(1)
    aio.guard_server_close_race()
    watchdog = aio.LoopWatchdog(loop_block_limit) if loop_block_limit else None
    if watchdog is not None:
        watchdog.start()  # this thread runs the loop
    try:
        asyncio.run(_run(settings, list(hosts) or ["unix:///run/shoal/shoal.sock"], api_tls,
                         pidfiles, metrics_addr=metrics_addr, web_addr=web))
    except ShoalError as exc:
        click.echo(f"shoald: {exc.message}", err=True)
        sys.exit(1)
    finally:
        if watchdog is not None:
            watchdog.stop()
        for held in pidfiles:
            held.release()


def _hold_pidfiles(data_root: Path, extra: str | None) -> list[PidFile]:
    """One daemon per data root (and per ``--pidfile``): the files held, or exit 1 with
    dockerd's words at once (after a bounded wait for a daemon that is stopping)."""
    paths = [data_root / "shoald.pid"]
    if extra and Path(extra).absolute() != paths[0].absolute():
        paths.append(Path(extra))
    held: list[PidFile] = []
    try:
        for path in paths:
            pidfile = PidFile(path)
            pidfile.acquire()
            held.append(pidfile)
    except (PidFileBusy, OSError) as exc:
        for pidfile in held:
            pidfile.release()
        message = exc.message if isinstance(exc, PidFileBusy) else f"PID file: {exc}"
        click.echo(f"shoald: {message}", err=True)
        sys.exit(1)
    return held
