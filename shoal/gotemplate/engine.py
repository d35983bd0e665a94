"""Execute Go text/templates over JSON-like data and `Fields` objects.

`Template(source, funcs).execute(data)` renders a template parsed by `shoal.gotemplate.parse`
with Go's builtin functions plus ``funcs``. Data is JSON (dicts, lists, scalars) or a `Fields`
object (a Go struct: its public methods named in ``field_names`` are the template fields, e.g.
docker's formatter contexts ``.ID``, ``.Replicas``...). Values print the way Go's ``fmt``
prints them (``map[k:v]``, ``[a b]``, ``<no value>``, ``<nil>``). ``missingkey_error``
is Go's ``Option("missingkey=error")``: a missing map key fails instead of ``<no value>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from shoal.gotemplate.builtins import BUILTINS, FuncError
from shoal.gotemplate.parse import (
    Action,
    Arg,
    Command,
    Control,
    DotArg,
    FieldArg,
    IdentArg,
    LiteralArg,
    Loop,
    Node,
    Pipe,
    PipeArg,
    TemplateSyntaxError,
    Text,
    VarArg,
    parse,
)
from shoal.gotemplate.printf import go_print
from shoal.gotemplate.values import MISSING, truth

__all__ = [
    "Fields",
    "Template",
    "TemplateError",
    "TemplateSyntaxError",
]


class TemplateError(ValueError):
    """Executing the template failed (unknown field, bad function call...)."""


class Fields:
    """A formatter context: the names in `field_names` are methods usable as ``{{.Name}}``."""

    field_names: ClassVar[tuple[str, ...]] = ()
    type_name: ClassVar[str] = "context"

    def json_fields(self) -> dict[str, Any]:
        """What ``{{json .}}`` prints: every zero-argument field, keys sorted (a Go map)."""
        return {name: getattr(self, name)() for name in sorted(self.field_names)}

    def embedded(self) -> dict[str, Any] | None:
        """The API object embedded in this context (Go struct embedding), if any."""
        return None


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Template:
    """A parsed template; `execute` may be called many times (rows, then the header)."""

    def __init__(self, source: str, funcs: Mapping[str, Callable[..., Any]] | None = None, *,
                 missingkey_error: bool = False) -> None:
        self.source = source
        self.funcs: dict[str, Callable[..., Any]] = {**BUILTINS, **(funcs or {})}
        self.missingkey_error = missingkey_error
        self.nodes = parse(source)
        self._check_functions(self.nodes)

    def _check_functions(self, nodes: list[Node]) -> None:
        for pipe in _pipes(nodes):
            for command in pipe.commands:
                for arg in command.args:
                    if isinstance(arg, IdentArg) and arg.name not in self.funcs:
                        raise TemplateSyntaxError(
                            f'template: :1: function "{arg.name}" not defined'
                        )

    def execute(self, data: Any, funcs: Mapping[str, Callable[..., Any]] | None = None) -> str:
        run = _Execution(data, {**self.funcs, **(funcs or {})}, self.missingkey_error)
        out: list[str] = []
        try:
            run.walk(self.nodes, data, out)
        except (_Break, _Continue):
            pass
        return "".join(out)


def _pipes(nodes: list[Node]) -> Iterator[Pipe]:
    for node in nodes:
        if isinstance(node, Action):
            yield node.pipe
        elif isinstance(node, Control):
            yield node.pipe
            yield from _pipes(node.body)
            yield from _pipes(node.else_body or [])


class _Execution:
    def __init__(self, root: Any, funcs: dict[str, Callable[..., Any]],
                 missingkey_error: bool = False) -> None:
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.funcs = funcs
        self.missingkey_error = missingkey_error
        self.where = ""

    def walk(self, nodes: list[Node], dot: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.text)
            elif isinstance(node, Action):
                self.where = node.where
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    out.append(go_print(value))
            elif isinstance(node, Control):
                self.where = node.where
                self.control(node, dot, out)
            elif isinstance(node, Loop):
                raise _Break() if node.kind == "break" else _Continue()

    def control(self, node: Control, dot: Any, out: list[str]) -> None:
        mark = len(self.vars)
        try:
            if node.kind == "range":
                self.range(node, dot, out)
                return
            value = self.pipe(node.pipe, dot)
            if truth(value):
                self.walk(node.body, value if node.kind == "with" else dot, out)
            elif node.else_body is not None:
                self.walk(node.else_body, dot, out)
        finally:
            del self.vars[mark:]

    def range(self, node: Control, dot: Any, out: list[str]) -> None:
        decl, node.pipe.decl = node.pipe.decl, []
        try:
            value = self.pipe(node.pipe, dot)
        finally:
            node.pipe.decl = decl
        items = list(_iterate(value))
        if not items and node.else_body is not None:
            self.walk(node.else_body, dot, out)
            return
        for key, element in items:
            mark = len(self.vars)
            if len(decl) == 1:
                self.vars.append((decl[0], element))
            elif len(decl) == 2:
                self.vars.extend([(decl[0], key), (decl[1], element)])
            try:
                self.walk(node.body, element, out)
            except _Break:
                break
            except _Continue:
                continue
            finally:
                del self.vars[mark:]

    def pipe(self, pipe: Pipe, dot: Any) -> Any:
        value: Any = MISSING
        for i, command in enumerate(pipe.commands):
            value = self.command(command, dot, value if i else None, piped=i > 0)
        for name in pipe.decl:
            if pipe.assign:
                for j in range(len(self.vars) - 1, -1, -1):
                    if self.vars[j][0] == name:
                        self.vars[j] = (name, value)
                        break
                else:
                    raise TemplateError(f"template: {self.where}: undefined variable: {name}")
            else:
                self.vars.append((name, value))
        return value

    def command(self, command: Command, dot: Any, final: Any, *, piped: bool) -> Any:
        first, rest = command.args[0], command.args[1:]
        extra = [self.arg(a, dot) for a in rest] + ([final] if piped else [])
        if isinstance(first, IdentArg):
            try:
                return self.funcs[first.name](*extra)
            except TemplateError:
                raise
            except (FuncError, TypeError, ValueError, KeyError, AttributeError) as exc:
                raise self.error(first.name, f"error calling {first.name}: {exc}") from exc
        if isinstance(first, FieldArg):
            return self.chain(dot, first.names, extra, "." + ".".join(first.names))
        if isinstance(first, VarArg) and first.names:
            return self.chain(self.variable(first.name), first.names, extra, first.name)
        if isinstance(first, PipeArg) and first.names:
            return self.chain(self.pipe(first.pipe, dot), first.names, extra, "(...)")
        if extra:
            raise self.error("", "can't give argument to non-function")
        return self.arg(first, dot)

    def arg(self, arg: Arg, dot: Any) -> Any:
        if isinstance(arg, DotArg):
            return dot
        if isinstance(arg, LiteralArg):
            return arg.value
        if isinstance(arg, FieldArg):
            return self.chain(dot, arg.names, [], "." + ".".join(arg.names))
        if isinstance(arg, VarArg):
            return self.chain(self.variable(arg.name), arg.names, [], arg.name)
        if isinstance(arg, PipeArg):
            return self.chain(self.pipe(arg.pipe, dot), arg.names, [], "(...)")
        if isinstance(arg, IdentArg):
            return self.funcs[arg.name]()
        raise TemplateError(f"template: {self.where}: bad argument")

    def variable(self, name: str) -> Any:
        for var, value in reversed(self.vars):
            if var == name:
                return value
        raise TemplateError(f"template: {self.where}: undefined variable: {name}")

    def chain(self, receiver: Any, names: tuple[str, ...], args: list[Any], text: str) -> Any:
        for i, name in enumerate(names):
            last = i == len(names) - 1
            receiver = self.field(receiver, name, args if last else [], text)
        if not names and args:
            raise self.error(text, "can't give argument to non-function")
        return receiver

    def field(self, receiver: Any, name: str, args: list[Any], text: str) -> Any:
        if isinstance(receiver, Fields):
            method = getattr(receiver, name, None) if name[:1].isupper() else None
            if callable(method):
                return method(*args)
            embedded = receiver.embedded()
            if embedded is not None and name in embedded and not args:
                return embedded[name]
            raise self.error(text, f"can't evaluate field {name} in type {receiver.type_name}")
        if args:
            raise self.error(text, f"{name} is not a method but has arguments")
        if isinstance(receiver, dict):
            if self.missingkey_error and name not in receiver:
                raise self.error(text, f'map has no entry for key "{name}"')
            return receiver.get(name, MISSING)
        if receiver is None or receiver is MISSING:
            return MISSING
        raise self.error(text, f"can't evaluate field {name} in type {_go_type(receiver)}")

    def error(self, text: str, message: str) -> TemplateError:
        return TemplateError(f'template: {self.where}: executing "" at <{text}>: {message}')


def _go_type(value: Any) -> str:
    return {str: "string", int: "int", float: "float64", bool: "bool", list: "[]interface {}"}.get(
        type(value), type(value).__name__
    )


def _iterate(value: Any) -> Iterator[tuple[Any, Any]]:
    if value is None or value is MISSING:
        return
    if isinstance(value, dict):
        for key in sorted(value):
            yield key, value[key]
    elif isinstance(value, (list, tuple)):
        yield from enumerate(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        for i in range(value):
            yield i, i
    else:
        raise TemplateError(f"range can't iterate over {go_print(value)}")
