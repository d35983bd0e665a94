"""``shoal dev up|down|ls|env|exec``: the command line of the local dev swarm (shoal.dev.cluster).

Dev tooling starts and stops processes on this machine rather than talking to a daemon, which is
why it lives here and not in shoal.cli. Failures print one line on stderr and exit 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx

from shoal.dev import cluster
from shoal.dev.cluster import DevError
from shoal.errors import ShoalError

__all__ = ["dev"]

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> None:
    click.echo(f"shoal dev: {message}", err=True)
    raise click.exceptions.Exit(1)


def _one_line_errors(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (DevError, ShoalError) as exc:
            _fail(str(exc))
        except httpx.HTTPError as exc:
            _fail(f"{type(exc).__name__}: {exc}")
        except OSError as exc:
            _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        return None

    return wrapper  # type: ignore[return-value]


def _root_option(func: F) -> F:
    return click.option(
        "--root", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Dev root: state, daemons' data, registry (default $SHOAL_DEV_ROOT, else "
             f"{cluster.DEFAULT_ROOT})")(func)


def _root(root: Path | None) -> Path:
    return (root or cluster.default_root()).absolute()


def _echo(line: str) -> None:
    click.echo(line, err=True)


@click.group(name="dev", context_settings={"help_option_names": ["-h", "--help"]})
def dev() -> None:
    """A local swarm of shoald daemons on simulated hosts, with a registry of demo images."""


def _prefix_option(help_text: str, default: str | None) -> Callable[[F], F]:
    return click.option("--prefix", default=default, show_default=default is not None,
                        help=help_text)


@dev.command()
@click.option("--nodes", "-n", type=int, default=3, show_default=True, help="Number of daemons")
@click.option("--managers", "-m", type=int, default=1, show_default=True,
              help="How many of them (the first ones) are managers")
@click.option("--executor", type=click.Choice(["sim", "runc"]), default="runc", show_default=True,
              help="runc: real containers; sim: tasks run no process")
@click.option("--base-ip", default=cluster.DEFAULT_BASE, show_default=True,
              help="Underlay /24 (private, not 10.x): node N on <base>.N, the registry on "
                   "<base>.254:5000")
@click.option("--publish-host", "publish", type=int, multiple=True, metavar="PORT",
              help="Forward 127.0.0.1:PORT on this machine to node1's <base>.1:PORT (repeatable)")
@_prefix_option("Names the network namespaces (<prefix>-node1...) and cgroups",
                cluster.PREFIX)
@_root_option
@_one_line_errors
def up(nodes: int, managers: int, executor: str, base_ip: str, publish: tuple[int, ...],
       prefix: str, root: Path | None) -> None:
    """Start a swarm of NODES daemons, each in a simulated host (a network namespace on a
    virtual switch: node1...), and a registry holding the demo images."""
    state = cluster.up(_root(root), nodes=nodes, managers=managers, executor=executor,
                       base_ip=base_ip, prefix=prefix, publish=publish, echo=_echo)
    click.echo(f"dev swarm up in {state.root} ({state.executor} executor)")
    for node in state.nodes:
        click.echo(f"  {node.hostname:<8} {node.ip:<15} {node.role:<8} {node.socket}")
    if state.registry is not None:
        click.echo(f"registry: http://{state.registry.addr} (from the nodes)")
    for ref in state.images:
        click.echo(f"  {ref}")
    if state.forwarder is not None:
        for port in state.forwarder.ports:
            click.echo(f"published: 127.0.0.1:{port} -> node1 {state.forwarder.target}:{port}")
    click.echo("to use it:")
    click.echo(f"  {cluster.env_line(Path(state.root))}")


@dev.command()
@_prefix_option("When the dev root is gone: remove the <prefix>-* network namespaces "
                "(processes inside them too) anyway", None)
@_root_option
@_one_line_errors
def down(prefix: str | None, root: Path | None) -> None:
    """Stop the dev swarm and remove every trace of it."""
    path = _root(root)
    if cluster.down(path, echo=_echo, prefix=prefix):
        click.echo(f"dev swarm in {path} removed")
    else:
        click.echo(f"no dev swarm in {path}")


@dev.command(name="ls")
@_root_option
@_one_line_errors
def ls(root: Path | None) -> None:
    """List the dev swarm's nodes and registry."""
    state = cluster.status(_root(root))
    rows = [("NAME", "ADDRESS", "ROLE", "PID", "STATUS", "NETNS", "SOCKET")]

    def ns(path: str) -> str:
        return os.path.basename(path) if path and os.path.exists(path) else "-"

    for n in state.nodes:
        rows.append((n.hostname, n.ip, n.role, str(n.pid),
                     "running" if cluster.node_running(n) else "dead", ns(n.netns), n.socket))
    if state.registry is not None:
        reg = state.registry
        rows.append(("registry", reg.addr, "registry", str(reg.pid),
                     "running" if cluster.registry_running(reg) else "dead", ns(reg.netns), "-"))
    if state.forwarder is not None:
        fwd = state.forwarder
        rows.append(("forward", "127.0.0.1:" + ",".join(map(str, fwd.ports)), "forwarder",
                     str(fwd.pid), "running" if cluster.forwarder_running(fwd) else "dead", "-",
                     f"-> {fwd.target}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r, widths)) + "   " + r[-1])


@dev.command()
@click.argument("node", required=False)
@_root_option
@_one_line_errors
def env(node: str | None, root: Path | None) -> None:
    """Print the DOCKER_HOST export line for NODE's daemon (a manager's by default)."""
    click.echo(cluster.env_line(_root(root), node))


@dev.command(name="exec", context_settings={"ignore_unknown_options": True,
                                            "allow_interspersed_args": False})
@_root_option
@click.argument("node")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@_one_line_errors
def exec_(root: Path | None, node: str, command: tuple[str, ...]) -> None:
    """Run COMMAND in NODE's simulated host (its network namespace; ``registry`` for the
    registry's), with this terminal and DOCKER_HOST set to NODE's daemon; exits with its code.

    shoal dev exec node1 -- ip -o addr"""
    args = list(command[1:] if command[:1] == ("--",) else command)
    argv, env = cluster.exec_argv(_root(root), node, args)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)  # the command's stdio, exit code and signals are the caller's


def main() -> None:
    """``python -m shoal.dev.cli``: the dev group on its own."""
    dev.main(prog_name="shoal dev")


if __name__ == "__main__":
    main()
