"""``shoal dev up --publish-host PORT``: a TCP forwarder from 127.0.0.1:PORT on this machine to
a simulated host's ``IP:PORT``, so a port published by the swarm can be reached from the machine
without any route, address or rule in the machine's own network namespace.

`bind` makes the listening sockets (in the caller's namespace, so a port in use fails at once),
`spawn` hands them to a detached ``python -m shoal.dev.forward`` process (it outlives ``shoal dev
up``; ``shoal dev down`` kills it by pid). For each accepted connection the forwarder makes the
outgoing socket inside the host's namespace: a worker thread that entered the namespace creates
it, and the socket stays there whichever thread connects and uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from shoal.net import netns as netns_mod

__all__ = ["bind", "main", "serve", "spawn"]

log = logging.getLogger("shoal.dev.forward")
CHUNK = 65536
CONNECT_TIMEOUT = 10.0


def bind(ports: list[int], host: str = "127.0.0.1") -> list[socket.socket]:
    """Listening TCP sockets on ``host:PORT`` for each port; all or none (OSError)."""
    made: list[socket.socket] = []
    try:
        for port in ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            made.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            s.listen(128)
    except OSError:
        for s in made:
            s.close()
        raise
    return made


def spawn(listeners: list[socket.socket], netns: str, target: str,
          logfile: Path) -> subprocess.Popen[bytes]:
    """Start the detached forwarder serving ``listeners`` (closed here once handed over), each
    to ``target`` on its own port inside the namespace at ``netns``. It runs in a session of its
    own, so it outlives its starter; its command line names ``logfile``, which is how ``shoal
    dev down`` recognises it."""
    argv = [sys.executable, "-m", "shoal.dev.forward", "--netns", netns, "--target", target,
            "--log", str(logfile)]
    for s in listeners:
        argv += ["--listen", f"{s.fileno()}={s.getsockname()[1]}"]
    # wherever the caller runs from, the child imports this same shoal
    package_dir = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (package_dir, os.environ.get("PYTHONPATH")) if p)}
    try:
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                    pass_fds=[s.fileno() for s in listeners],
                                    start_new_session=True)
    finally:
        for s in listeners:
            s.close()
    return proc


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Copy until EOF (then half-close) -> True, or until an error -> False."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        return True
    except OSError:
        return False


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass


async def _handle(pool: ThreadPoolExecutor, target: str, port: int,
                  reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    loop = asyncio.get_running_loop()
    try:
        sock = await loop.run_in_executor(pool, socket.socket)  # born in the host's namespace
    except (OSError, RuntimeError) as exc:
        log.warning("cannot make a socket in the host's namespace: %s", exc)
        await _close(writer)
        return
    try:
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, (target, port)), CONNECT_TIMEOUT)
        up_reader, up_writer = await asyncio.open_connection(sock=sock)
    except (OSError, TimeoutError) as exc:
        sock.close()
        log.info("%s:%d: %s", target, port, exc or type(exc).__name__)
        await _close(writer)
        return
    to_host = asyncio.create_task(_pipe(reader, up_writer))
    from_host = asyncio.create_task(_pipe(up_reader, writer))
    done, _ = await asyncio.wait([to_host, from_host], return_when=asyncio.FIRST_COMPLETED)
    if not all(t.result() for t in done):  # a reset: end the other direction too
        up_writer.close()
        writer.close()
    await asyncio.gather(to_host, from_host)
    await _close(up_writer)
    await _close(writer)


async def serve(listeners: list[tuple[socket.socket, int]], netns: str, target: str) -> None:
    """Forward each (listening socket, port) to ``target:port`` in ``netns`` until SIGTERM or
    SIGINT."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="netns",
                            initializer=netns_mod.enter, initargs=(netns,)) as pool:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(pool, lambda: None)  # fails now if the namespace is gone
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        servers = [await asyncio.start_server(functools.partial(_handle, pool, target, port),
                                              sock=sock) for sock, port in listeners]
        for _, port in listeners:
            log.info("forwarding 127.0.0.1:%d to %s:%d in %s", port, target, port, netns)
        await stop.wait()
        for server in servers:
            server.close()
            await server.wait_closed()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shoal.dev.forward", description=__doc__)
    parser.add_argument("--netns", required=True, help="the host's namespace path")
    parser.add_argument("--target", required=True, help="the host's IP")
    parser.add_argument("--listen", action="append", default=[], metavar="FD=PORT",
                        help="an inherited listening socket and the port it forwards to")
    parser.add_argument("--log", help="log file (named so that 'shoal dev down' finds us)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s forward: %(message)s")
    listeners = []
    for item in args.listen:
        fd, _, port = item.partition("=")
        listeners.append((socket.socket(fileno=int(fd)), int(port)))
    asyncio.run(serve(listeners, args.netns, args.target))


if __name__ == "__main__":
    main()
