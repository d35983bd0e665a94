"""Templated secrets and configs (swarmkit's template package: context.go, expand.go,
getter.go), expanded on the node for each task before its files are written.

A secret or config created with ``--template-driver golang`` holds a Go text/template
(``missingkey=error``, named "expansion"), executed with this context:

    .Service.ID .Service.Name .Service.Labels
    .Node.ID .Node.Hostname .Node.Platform.OS .Node.Platform.Architecture
    .Task.ID .Task.Name .Task.Slot       (Slot: the node ID when the task has none)

and the functions ``join SEP A B...``, ``env "NAME"`` (the task's ContainerSpec.Env, "" when
unset), ``secret "TARGET"`` and ``config "TARGET"``: the raw data of another secret or config
of the same task, found by its file name (File.Name), as swarmkit's getters do. Only the
task's own references can be read. Any other driver name, or a failing template, fails the
task: ``failed to expand templated secret <id>: ...``. Expansion happens in memory only.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from shoal.gotemplate import Fields, Template
from shoal.model.objects import Task
from shoal.model.references import FileRef

__all__ = ["GOLANG", "NodeInfo", "TemplateFailed", "expand", "expand_container_spec",
           "expand_files"]

GOLANG = "golang"  # the only template driver (swarmkit's)
_NAME = "expansion"  # swarmkit's template name, in its error messages


class TemplateFailed(Exception):
    """A templated secret or config could not be expanded (the message says which)."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a template may know of the node the task runs on."""

    hostname: str = ""
    os: str = ""
    architecture: str = ""

    @classmethod
    def local(cls, hostname: str) -> NodeInfo:
        """This machine, as the executors describe it (os.uname)."""
        uname = os.uname()
        return cls(hostname=hostname, os=uname.sysname.lower(), architecture=uname.machine)


class _Struct(Fields):
    """A Go struct of string fields (and maps): each field a zero-argument method."""

    def __init__(self, **values: Any) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values", {})
        if name in values:
            return lambda: values[name]
        raise AttributeError(name)

    def json_fields(self) -> dict[str, Any]:
        return {name: self._values[name] for name in self.field_names}


class _Service(_Struct):
    field_names: ClassVar[tuple[str, ...]] = ("ID", "Name", "Labels")
    type_name: ClassVar[str] = "struct { ID string; Name string; Labels map[string]string }"


class _Platform(_Struct):
    field_names: ClassVar[tuple[str, ...]] = ("Architecture", "OS")
    type_name: ClassVar[str] = "template.Platform"


class _Node(_Struct):
    field_names: ClassVar[tuple[str, ...]] = ("ID", "Hostname", "Platform")
    type_name: ClassVar[str] = "struct { ID string; Hostname string; Platform template.Platform }"


class _Task(_Struct):
    field_names: ClassVar[tuple[str, ...]] = ("ID", "Name", "Slot")
    type_name: ClassVar[str] = "struct { ID string; Name string; Slot string }"


class _Context(_Struct):
    field_names: ClassVar[tuple[str, ...]] = ("Service", "Node", "Task")
    type_name: ClassVar[str] = "*template.PayloadContext"


def context(task: Task, node: NodeInfo) -> Fields:
    """swarmkit's NewContext: the values a template sees."""
    return _Context(
        Service=_Service(ID=task.service_id, Name=task.service_name,
                         Labels=dict(task.service_labels or {})),
        Node=_Node(ID=task.node_id, Hostname=node.hostname,
                   Platform=_Platform(Architecture=node.architecture, OS=node.os)),
        Task=_Task(ID=task.id, Name=task.name or task.full_name,
                   Slot=str(task.slot) if task.slot else task.node_id),
    )


def _join(sep: str, *items: str) -> str:
    return sep.join(items)


def _env(task: Task) -> Any:
    def env(name: str) -> str:
        for entry in (task.spec.container_spec or {}).get("Env") or []:
            key, eq, value = str(entry).partition("=")
            if eq and key == name:
                return value
        return ""
    return env


def _getter(kind: str, raw: Mapping[FileRef, bytes]) -> Any:
    def get(target: str) -> str:
        for ref, data in raw.items():
            if ref.kind == kind and ref.name == target:
                return data.decode("utf-8", "surrogateescape")
        raise ValueError(f"{kind} target {target} not found")
    return get


def expand(ref: FileRef, driver: str, task: Task, node: NodeInfo,
           raw: Mapping[FileRef, bytes]) -> bytes:
    """``raw[ref]`` expanded for ``task`` if ``driver`` names a template driver, else as is.
    ``raw`` is the unexpanded data of every file the task references (what ``secret`` and
    ``config`` read). Raises TemplateFailed."""
    data = raw[ref]
    if not driver:
        return data
    try:
        if driver != GOLANG:
            raise ValueError("unrecognized template type")
        funcs = {"join": _join, "env": _env(task), "secret": _getter("secret", raw),
                 "config": _getter("config", raw)}
        source = data.decode("utf-8", "surrogateescape")
        out = Template(source, funcs, missingkey_error=True).execute(context(task, node))
        return out.encode("utf-8", "surrogateescape")  # bytes that are not UTF-8 kept, as Go
    except Exception as exc:  # TemplateError, TemplateSyntaxError, or a user template's oddity
        message = str(exc).replace("template: :", f"template: {_NAME}:", 1)
        message = message.replace('executing ""', f'executing "{_NAME}"', 1)
        raise TemplateFailed(f"failed to expand templated {ref.kind} {ref.id}: {message}") from exc


def expand_files(raw: Mapping[FileRef, bytes], drivers: Mapping[FileRef, str], task: Task,
                 node: NodeInfo) -> dict[FileRef, bytes]:
    """Every file's data expanded (`expand`); ``drivers``: each templated one's driver."""
    return {ref: expand(ref, drivers.get(ref, ""), task, node, raw) for ref in raw}


def _expander(task: Task, node: NodeInfo) -> Callable[[str], str]:
    ctx = context(task, node)

    def expand(text: str) -> str:
        if "{{" not in text:
            return text  # most values: no parse
        try:
            return Template(text, {"join": _join}, missingkey_error=True).execute(ctx)
        except Exception as exc:  # a user template's error (or oddity), reported as Go's
            message = str(exc).replace("template: :", f"template: {_NAME}:", 1)
            raise ValueError(message.replace('executing ""', f'executing "{_NAME}"', 1)) from exc
    return expand


def _expand_map(values: Any, expand: Callable[[str], str]) -> Any:
    if not isinstance(values, dict):
        return values
    return {k: expand(v) if isinstance(v, str) else v for k, v in values.items()}


def _expand_mount(mount: dict[str, Any], expand: Callable[[str], str]) -> dict[str, Any]:
    out = dict(mount)
    for key, what in (("Source", "source"), ("Target", "target")):
        if isinstance(out.get(key), str):
            try:
                out[key] = expand(out[key])
            except ValueError as exc:
                raise ValueError(f"expanding mount {what} {mount[key]!r}: {exc}") from exc
    volume = out.get("VolumeOptions")
    if isinstance(volume, dict):
        volume = out["VolumeOptions"] = dict(volume)
        volume["Labels"] = _expand_map(volume.get("Labels"), expand)
        driver = volume.get("DriverConfig")
        if isinstance(driver, dict):
            volume["DriverConfig"] = {**driver, "Options": _expand_map(driver.get("Options"),
                                                                        expand)}
    return out


def expand_container_spec(spec: dict[str, Any], task: Task, node: NodeInfo) -> dict[str, Any]:
    """A copy of ``spec`` with its templated fields expanded for ``task`` on ``node``
    (swarmkit's ExpandContainerSpec); TemplateFailed says which field failed."""
    expand = _expander(task, node)
    out = copy.deepcopy(spec)
    env = []
    for entry in out.get("Env") or []:
        key, eq, value = str(entry).partition("=")
        try:
            env.append(f"{key}={expand(value)}" if eq else key)
        except ValueError as exc:
            raise TemplateFailed(f"expanding env failed: expanding env {entry!r}: {exc}") from exc
    if "Env" in out:
        out["Env"] = env
    if isinstance(out.get("Mounts"), list):
        try:
            out["Mounts"] = [_expand_mount(m, expand) if isinstance(m, dict) else m
                             for m in out["Mounts"]]
        except ValueError as exc:
            raise TemplateFailed(f"expanding mounts failed: {exc}") from exc
    try:
        if isinstance(out.get("Hostname"), str):
            out["Hostname"] = expand(out["Hostname"])
    except ValueError as exc:
        raise TemplateFailed(f"expanding hostname failed: {exc}") from exc
    return out
