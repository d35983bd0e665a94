"""``shoal image pull|load|import|ls|inspect|rm|tag`` and docker's top-level aliases
(``shoal pull``, ``images``, ``rmi``, ``load``, ``import``, ``tag``).

Pull, load and import answer JSON-message streams; they are read line by line as they come
(progress as docker prints it when stdout is not a terminal: ``ID: status``), and an
``errorDetail`` line ends the command with its message. Uploaded archives are streamed from the
file (or stdin), never read whole.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import IO, Any

import click

from shoal.cli import flagtypes as ft
from shoal.cli.app import App
from shoal.cli.client import DaemonError
from shoal.cli.command import ShoalCommand, ShoalGroup, pass_app
from shoal.cli.errors import CliError
from shoal.cli.format.timefmt import human_duration, since
from shoal.cli.formatting import list_format, print_inspect, render_list
from shoal.cli.images import parse_image
from shoal.cli.options import filter_option, inspect_format_option, list_format_option
from shoal.cli.progress.render import Progress, ProgressDisplay
from shoal.gotemplate import Fields

__all__ = ["ALIASES", "image"]

_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
_TABLE_DIGESTS = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
_HEADER = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
           "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
           "Containers": "CONTAINERS"}
_CHUNK = 1 << 20


def _size(size: float) -> str:
    """go-units ``HumanSizeWithPrecision(size, 3)``: ``4.26MB``."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    index = 0
    while size >= 1000.0 and index < len(units) - 1:
        size /= 1000.0
        index += 1
    return f"{size:.3g}{units[index]}"


def _stream(app: App, method: str, path: str, *, params: Any = None,
            content: Iterator[bytes] | None = None) -> Iterator[dict[str, Any]]:
    """Send a request whose answer is a JSON-message stream; yield each message."""
    headers = {"Content-Type": "application/x-tar"} if content is not None else {}
    with app.client.stream(path, params, method=method, content=content,
                           headers=headers) as response:
        for line in response.iter_lines():
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                if message.get("errorDetail") or message.get("error"):
                    detail = message.get("errorDetail") or {}
                    raise CliError(str(detail.get("message") or message.get("error")))
                yield message


def _chunks(source: IO[bytes]) -> Iterator[bytes]:
    while True:
        chunk = source.read(_CHUNK)
        if not chunk:
            return
        yield chunk


def _print_message(app: App, message: Mapping[str, Any]) -> None:
    if "stream" in message:
        app.out(str(message["stream"]))
        return
    status = str(message.get("status", ""))
    if not status:
        return
    ident = message.get("id")
    app.println(f"{ident}: {status}" if ident else status)


def _show_pull(display: ProgressDisplay, message: Mapping[str, Any]) -> None:
    """A pull's message as docker shows it: a line per layer redrawn in place on a terminal,
    with its download bar; elsewhere the lines without a bar."""
    status = str(message.get("status", ""))
    if not status:
        return
    ident = str(message.get("id") or "")
    detail = message.get("progressDetail")
    if isinstance(detail, dict) and ident:
        current, total = detail.get("current", 0), detail.get("total", 0)
        display(Progress(id=ident, action=status, units="bytes",
                         current=current if isinstance(current, int) else 0,
                         total=total if isinstance(total, int) else 0))
    else:
        display(Progress(id=ident, message=status))


# -- commands ------------------------------------------------------------------------------

@click.group(cls=ShoalGroup)
def image() -> None:
    """Manage images"""


image.alias("list", "ls")
image.alias("remove", "rm")


@image.command("pull", use="[OPTIONS] NAME[:TAG|@DIGEST]", arity=(1, 1))
@click.option("-a", "--all-tags", is_flag=True, help="Download all tagged images in the repository")
@click.option("--platform", default="", help="Set platform if server is multi-platform capable")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.argument("args", nargs=-1)
@pass_app
def pull(app: App, all_tags: bool, platform: str, quiet: bool, args: tuple[str, ...]) -> None:
    """Download an image from a registry"""
    if all_tags:
        raise CliError("--all-tags is not supported")
    try:
        ref = parse_image(args[0])
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if not ref.tag and not ref.digest:
        ref = replace(ref, tag="latest")
        if not quiet:
            app.println("Using default tag: latest")
    name = f"{ref.domain or 'docker.io'}/{ref.path}"
    params = {"fromImage": name, "tag": ref.digest or ref.tag}
    if platform:
        params["platform"] = platform
    display = ProgressDisplay(app.out, tty=app.is_tty, width=app.width)
    for message in _stream(app, "POST", "/images/create", params=params):
        if not quiet:
            _show_pull(display, message)
    app.println(name + (f"@{ref.digest}" if ref.digest else f":{ref.tag}"))


@image.command("load", use="[OPTIONS]")
@click.option("-i", "--input", "input_", default="", help="Read from tar archive file, instead of STDIN")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output")
@click.argument("args", nargs=-1)
@pass_app
def load(app: App, input_: str, quiet: bool, args: tuple[str, ...]) -> None:
    """Load an image from a tar archive or STDIN"""
    if input_:
        try:
            source: IO[bytes] = open(input_, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CliError(f"open {input_}: {exc.strerror.lower() if exc.strerror else exc}") from exc
    else:
        if sys.stdin.isatty():
            raise CliError("requested load from stdin, but stdin is empty")
        source = sys.stdin.buffer
    try:
        params = {"quiet": "1" if quiet else "0"}
        for message in _stream(app, "POST", "/images/load", params=params, content=_chunks(source)):
            _print_message(app, message)
    finally:
        if input_:
            source.close()


@image.command("import", use="[OPTIONS] file|URL|- [REPOSITORY[:TAG]]", arity=(1, 2))
@click.option("-c", "--change", "changes", multiple=True, help="Apply Dockerfile instruction to the created image")
@click.option("-m", "--message", default="", help="Set commit message for imported image")
@click.option("--platform", default="", help="Set platform if server is multi-platform capable")
@click.argument("args", nargs=-1)
@pass_app
def import_(app: App, changes: tuple[str, ...], message: str, platform: str, args: tuple[str, ...]) -> None:
    """Import the contents from a tarball to create a filesystem image"""
    source_name = args[0]
    repo = args[1] if len(args) > 1 else ""
    if repo:
        try:
            parse_image(repo)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    params: list[tuple[str, str]] = [("fromSrc", "-" if "://" not in source_name else source_name)]
    if repo:
        params += [("repo", repo), ("tag", "")]
    params += [("message", message)] if message else []
    params += [("changes", change) for change in changes]
    if platform:
        params.append(("platform", platform))
    content: Iterator[bytes] | None = None
    source: IO[bytes] | None = None
    if source_name == "-":
        source = sys.stdin.buffer
    elif "://" not in source_name:
        try:
            source = open(source_name, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CliError(f"open {source_name}: {exc.strerror.lower() if exc.strerror else exc}") from exc
    if source is not None:
        content = _chunks(source)
    try:
        for msg in _stream(app, "POST", "/images/create", params=params, content=content):
            _print_message(app, msg)
    finally:
        if source is not None and source is not sys.stdin.buffer:
            source.close()


class ImageRow(Fields):
    """One ``image ls`` row (docker's ``imageContext``)."""

    field_names = ("Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
                   "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize")
    type_name = "*formatter.imageContext"

    def __init__(self, item: Mapping[str, Any], repo: str, tag: str, digest: str, trunc: bool,
                 now_ns: int) -> None:
        self.item, self.repo, self.tag, self.digest = item, repo, tag, digest
        self.trunc, self.now_ns = trunc, now_ns

    def ID(self) -> str:
        ident = str(self.item.get("Id", ""))
        return ident.removeprefix("sha256:")[:12] if self.trunc else ident

    def Repository(self) -> str:
        return self.repo

    def Tag(self) -> str:
        return self.tag

    def Digest(self) -> str:
        return self.digest

    def _created_ns(self) -> int:
        return int(self.item.get("Created") or 0) * 1_000_000_000

    def CreatedSince(self) -> str:
        if not self.item.get("Created"):
            return "N/A"
        return human_duration(since(self._created_ns(), self.now_ns)) + " ago"

    def CreatedAt(self) -> str:
        from datetime import UTC, datetime

        moment = datetime.fromtimestamp(int(self.item.get("Created") or 0), UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")

    def Size(self) -> str:
        return _size(float(self.item.get("Size") or 0))

    def VirtualSize(self) -> str:
        return self.Size()

    def SharedSize(self) -> str:
        shared = int(self.item.get("SharedSize") or -1)
        return "N/A" if shared < 0 else _size(float(shared))

    def UniqueSize(self) -> str:
        shared = int(self.item.get("SharedSize") or -1)
        return "N/A" if shared < 0 else _size(float(int(self.item.get("Size") or 0) - shared))

    def Containers(self) -> str:
        count = int(self.item.get("Containers") or -1)
        return "N/A" if count < 0 else str(count)


def _split(name: str) -> tuple[str, str]:
    repo, _, tag = name.rpartition(":")
    if "/" in tag or not repo:
        return name, "<none>"
    return repo, tag


def _rows(items: list[dict[str, Any]], digests: bool, trunc: bool, now_ns: int) -> list[ImageRow]:
    rows = []
    for item in items:
        tags = list(item.get("RepoTags") or [])
        repo_digests = list(item.get("RepoDigests") or [])
        by_repo = {d.partition("@")[0]: d.partition("@")[2] for d in repo_digests}
        if not tags:
            repo = repo_digests[0].partition("@")[0] if repo_digests else "<none>"
            rows.append(ImageRow(item, repo, "<none>", by_repo.get(repo, "<none>"), trunc, now_ns))
            continue
        for name in tags:
            repo, tag = _split(name)
            rows.append(ImageRow(item, repo, tag, by_repo.get(repo, "<none>"), trunc, now_ns))
    return rows


@image.command("ls", use="[OPTIONS] [REPOSITORY[:TAG]]", arity=(0, 1))
@click.option("-a", "--all", "all_", is_flag=True, help="Show all images (default hides intermediate images)")
@click.option("--digests", is_flag=True, help="Show digests")
@filter_option()
@list_format_option()
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.argument("args", nargs=-1)
@pass_app
def ls(app: App, all_: bool, digests: bool, filters: tuple[Any, ...], fmt: str, no_trunc: bool,
       quiet: bool, args: tuple[str, ...]) -> None:
    """List images"""
    wanted = ft.filters_from(filters)
    if args:
        wanted.setdefault("reference", []).append(args[0])
    items = app.client.get("/images/json", ft.filter_query(wanted)) or []
    rows = _rows(items, digests, not no_trunc, app.now_ns())
    if quiet and (fmt in ("", "table")):
        seen: list[str] = []
        for row in rows:
            if row.ID() not in seen:
                seen.append(row.ID())
        app.out("".join(f"{ident}\n" for ident in seen))
        return
    source = list_format(fmt or "table", default_table=_TABLE_DIGESTS if digests else _TABLE, quiet=quiet)
    app.out(render_list(source, rows, _HEADER))


@image.command("inspect", use="[OPTIONS] IMAGE [IMAGE...]", arity=(1, None))
@inspect_format_option()
@click.option("--platform", default="", help="Inspect a specific platform of the multi-platform image")
@click.argument("args", nargs=-1)
@pass_app
def inspect(app: App, fmt: str, platform: str, args: tuple[str, ...]) -> None:
    """Display detailed information on one or more images"""
    print_inspect(app.out, args, lambda ref: app.client.get(f"/images/{ref}/json"), fmt)


@image.command("rm", use="[OPTIONS] IMAGE [IMAGE...]", arity=(1, None))
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents")
@click.argument("args", nargs=-1)
@pass_app
def rm(app: App, force: bool, no_prune: bool, args: tuple[str, ...]) -> None:
    """Remove one or more images"""
    params = {"force": "1" if force else "0", "noprune": "1" if no_prune else "0"}
    failed = []
    for name in args:
        try:
            answer = app.client.delete(f"/images/{name}", params) or []
        except DaemonError as exc:
            failed.append(str(exc))
            continue
        for item in answer:
            for key in ("Untagged", "Deleted"):
                if key in item:
                    app.println(f"{key}: {item[key]}")
    if failed:
        raise CliError("\n".join(failed))


@image.command("tag", use="SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", arity=(2, 2))
@click.argument("args", nargs=-1)
@pass_app
def tag(app: App, args: tuple[str, ...]) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"""
    try:
        target = parse_image(args[1])
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if target.digest:
        raise CliError("refusing to create a tag with a digest reference")
    repo = f"{target.domain}/{target.path}" if target.domain else target.path
    app.client.post(f"/images/{args[0]}/tag", params={"repo": repo, "tag": target.tag or "latest"})


def _alias(command: click.Command, name: str) -> click.Command:
    """The same command under docker's top-level name (``images``, ``rmi``...)."""
    assert isinstance(command, ShoalCommand)
    copy = ShoalCommand(name, params=command.params, callback=command.callback, help=command.help,
                        use=command.use, arity=command.arity)
    return copy


ALIASES = [_alias(pull, "pull"), _alias(ls, "images"), _alias(rm, "rmi"), _alias(load, "load"),
           _alias(import_, "import"), _alias(tag, "tag")]
