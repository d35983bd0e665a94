"""Parser for the Go text/template subset docker's ``--format`` uses.

Turns ``table {{.ID}}\\t{{if .Self}}*{{end}}`` into a tree of `Text`, `Action`, `If`, `Range`
and `With` nodes; `shoal.gotemplate.engine` executes the tree.  Supported: fields and chains
(``.A.B``), ``$`` variables (``:=`` and ``=``), function calls and pipes, parentheses, string,
number, bool and nil literals, ``{{-``/``-}}`` trimming, comments, ``if``/``else if``/``range``
(with ``$k, $v :=``)/``with``/``else``/``end``, ``break`` and ``continue``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shoal.gotemplate.lex import (
    TemplateSyntaxError,
    Token,
    number,
    split_actions,
    tokenize,
    unquote,
)

__all__ = ["Arg", "Node", "TemplateSyntaxError", "parse"]


@dataclass
class Text:
    text: str


@dataclass
class FieldArg:
    names: tuple[str, ...]


@dataclass
class VarArg:
    name: str
    names: tuple[str, ...] = ()


@dataclass
class DotArg:
    pass


@dataclass
class IdentArg:
    name: str


@dataclass
class LiteralArg:
    value: Any


@dataclass
class PipeArg:
    pipe: Pipe
    names: tuple[str, ...] = ()


Arg = FieldArg | VarArg | DotArg | IdentArg | LiteralArg | PipeArg


@dataclass
class Command:
    args: list[Arg]


@dataclass
class Pipe:
    commands: list[Command]
    decl: list[str] = field(default_factory=list)
    assign: bool = False  # "=" rather than ":="


@dataclass
class Action:
    pipe: Pipe
    where: str = ""


@dataclass
class Control:
    kind: str  # "if", "range", "with"
    pipe: Pipe
    body: list[Node]
    else_body: list[Node] | None = None
    where: str = ""


@dataclass
class Loop:
    kind: str  # "break" or "continue"


Node = Text | Action | Control | Loop


class _ActionParser:
    """Parses the tokens of one action into a pipeline."""

    def __init__(self, tokens: list[Token], where: str) -> None:
        self.tokens, self.pos, self.where = tokens, 0, where

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos][:2] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        kind, text, _ = self.tokens[self.pos]
        self.pos += 1
        return kind, text

    def fail(self, message: str) -> TemplateSyntaxError:
        return TemplateSyntaxError(f"template: {self.where}: {message}")

    def pipeline(self, context: str, *, until_paren: bool = False) -> Pipe:
        pipe = Pipe(commands=[])
        decl_end = self._declaration_end()
        if decl_end:
            names = [t[1] for t in self.tokens[self.pos : decl_end - 1] if t[0] == "var"]
            pipe.decl, pipe.assign = names, self.tokens[decl_end - 1][0] == "assign"
            self.pos = decl_end
        while True:
            pipe.commands.append(self.command(until_paren))
            token = self.peek()
            if token is None or (until_paren and token == ("punct", ")")):
                break
            if token == ("punct", "|"):
                self.take()
                continue
            raise self.fail(f"unexpected {token[1]} in {context}")
        if not pipe.commands or not pipe.commands[0].args:
            raise self.fail(f"missing value for {context}")
        return pipe

    def _declaration_end(self) -> int:
        """Index after ``$a :=`` / ``$a, $b :=`` / ``$a =``, or 0 if none."""
        i = self.pos
        while i < len(self.tokens) and self.tokens[i][0] == "var":
            i += 1
            if i < len(self.tokens) and self.tokens[i][:2] == ("punct", ","):
                i += 1
                continue
            if i < len(self.tokens) and self.tokens[i][0] in ("declare", "assign"):
                return i + 1
            return 0
        return 0

    def command(self, until_paren: bool) -> Command:
        args: list[Arg] = []
        while True:
            token = self.peek()
            if token is None or token == ("punct", "|"):
                break
            if until_paren and token == ("punct", ")"):
                break
            args.append(self.operand())
        if not args:
            raise self.fail("missing value for command")
        return Command(args)

    def operand(self) -> Arg:
        kind, text = self.take()
        if kind == "field":
            return FieldArg(tuple(text[1:].split(".")))
        if kind == "dot":
            return DotArg()
        if kind == "var":
            name, *fields = text.split(".")
            return VarArg(name, tuple(fields))
        if kind in ("string", "raw"):
            return LiteralArg(unquote(text) if kind == "string" else text[1:-1])
        if kind == "char":
            return LiteralArg(ord(unquote(text)))
        if kind == "number":
            return LiteralArg(number(text))
        if kind == "ident":
            return {
                "true": LiteralArg(True),
                "false": LiteralArg(False),
                "nil": LiteralArg(None),
            }.get(text, IdentArg(text))
        if (kind, text) == ("punct", "("):
            pipe = self.pipeline("parenthesized pipeline", until_paren=True)
            if self.peek() != ("punct", ")"):
                raise self.fail("unclosed left paren")
            self.take()
            chain: tuple[str, ...] = ()
            nxt = self.peek()
            if nxt is not None and nxt[0] == "field" and self._adjacent():
                chain = tuple(self.take()[1][1:].split("."))
            return PipeArg(pipe, chain)
        raise self.fail(f"unexpected {text!r} in operand")

    def _adjacent(self) -> bool:
        """Whether the next token starts right where the previous one ended (``(x).F``)."""
        _, nxt_text, nxt_end = self.tokens[self.pos]
        return self.tokens[self.pos - 1][2] == nxt_end - len(nxt_text)


def parse(source: str) -> list[Node]:
    """Parse a template; raise `TemplateSyntaxError` when it is malformed."""
    parts = split_actions(source)
    nodes, terminator, _ = _parse_list(parts, 0, depth=0)
    if terminator is not None:
        raise TemplateSyntaxError(f"template: {terminator[2]}: unexpected {{{{{terminator[0]}}}}}")
    return nodes


_Stop = tuple[str, str, str]  # keyword, rest of the action, where


def _parse_list(
    parts: list[tuple[str, str, str]], index: int, depth: int
) -> tuple[list[Node], _Stop | None, int]:
    nodes: list[Node] = []
    while index < len(parts):
        kind, body, where = parts[index]
        index += 1
        if kind == "text":
            if body:
                nodes.append(Text(body))
            continue
        if body.startswith("/*"):
            if not body.endswith("*/"):
                raise TemplateSyntaxError(f"template: {where}: unclosed comment")
            continue
        word = body.split(None, 1)[0] if body else ""
        rest = body[len(word) :].strip()
        if word in ("end", "else"):
            if depth == 0:
                raise TemplateSyntaxError(f"template: {where}: unexpected {{{{{word}}}}}")
            return nodes, (word, rest, where), index
        if word in ("break", "continue"):
            nodes.append(Loop(word))
            continue
        if word in ("if", "range", "with"):
            node, index = _parse_control(word, rest, where, parts, index, depth)
            nodes.append(node)
            continue
        if word in ("define", "template", "block"):
            raise TemplateSyntaxError(f"template: {where}: {{{{{word}}}}} is not supported")
        if not body:
            raise TemplateSyntaxError(f"template: {where}: missing value for command")
        nodes.append(Action(_ActionParser(tokenize(body, where), where).pipeline("command"), where))
    return nodes, None, index


def _parse_control(
    kind: str, rest: str, where: str, parts: list[tuple[str, str, str]], index: int, depth: int
) -> tuple[Control, int]:
    if not rest:
        raise TemplateSyntaxError(f"template: {where}: missing value for {kind}")
    pipe = _ActionParser(tokenize(rest, where), where).pipeline(kind)
    body, stop, index = _parse_list(parts, index, depth + 1)
    if stop is None:
        raise TemplateSyntaxError(f"template: {where}: unexpected EOF")
    node = Control(kind, pipe, body, None, where)
    word, stop_rest, stop_where = stop
    if word == "else":
        if stop_rest.split(None, 1)[:1] in (["if"], ["with"]):
            nested_kind = stop_rest.split(None, 1)[0]
            nested, index = _parse_control(
                nested_kind, stop_rest[len(nested_kind) :].strip(), stop_where, parts, index, depth
            )
            node.else_body = [nested]
            return node, index
        if stop_rest:
            raise TemplateSyntaxError(f"template: {stop_where}: unexpected {stop_rest!r} in else")
        else_body, stop, index = _parse_list(parts, index, depth + 1)
        if stop is None or stop[0] != "end":
            raise TemplateSyntaxError(f"template: {stop_where}: expected end; found {stop}")
        node.else_body = else_body
    return node, index
