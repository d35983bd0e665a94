"""Lexing for `shoal.gotemplate.parse`: split a template into text and ``{{ }}`` actions
(applying ``{{-``/``-}}`` trimming) and split an action into tokens."""

from __future__ import annotations

import re

__all__ = ["TemplateSyntaxError", "Token", "number", "split_actions", "tokenize", "unquote"]


class TemplateSyntaxError(ValueError):
    """The format string is not a valid template; the message reads like Go's."""


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<punct>[|(),])
    """,
    re.VERBOSE,
)
_GO_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "0": "\0",
}


def unquote(text: str) -> str:
    out, i = [], 1
    while i < len(text) - 1:
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1]
            if nxt in "xuU":
                size = {"x": 2, "u": 4, "U": 8}[nxt]
                out.append(chr(int(text[i + 2 : i + 2 + size], 16)))
                i += 2 + size
                continue
            out.append(_GO_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


Token = tuple[str, str, int]  # kind, text, end offset


def tokenize(body: str, where: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(body):
        match = _TOKEN.match(body, pos)
        if match is None:
            raise TemplateSyntaxError(f"template: {where}: unexpected {body[pos]!r} in command")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group(), match.end()))
        pos = match.end()
    return tokens


def number(text: str) -> int | float:
    clean = text.replace("_", "")
    if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", clean):
        return int(clean, 16)
    if re.fullmatch(r"[+-]?\d+", clean):
        return int(clean)
    return float(clean)


def split_actions(source: str) -> list[tuple[str, str, str]]:
    """Split into ("text", s, where) and ("action", body, where), applying trim markers."""
    parts: list[tuple[str, str, str]] = []
    pos, trim_next = 0, False
    while True:
        start = source.find("{{", pos)
        text = source[pos:] if start == -1 else source[pos:start]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if start == -1:
            parts.append(("text", text, ""))
            return parts
        line = source.count("\n", 0, start) + 1
        col = start - (source.rfind("\n", 0, start) + 1)
        where = f":{line}:{col + 2}"
        inner = start + 2
        if source[inner : inner + 2] in ("- ", "-\t", "-\n", "-\r"):
            text = text.rstrip(" \t\r\n")
            inner += 1
        parts.append(("text", text, ""))
        end = _find_close(source, inner)
        if end == -1:
            raise TemplateSyntaxError(f"template: :{line}: unclosed action")
        body_end, trim_next = end, False
        if end >= 2 and source[end - 1] == "-" and source[end - 2] in " \t\r\n":
            body_end, trim_next = end - 1, True
        parts.append(("action", source[inner:body_end].strip(), where))
        pos = end + 2


def _find_close(source: str, pos: int) -> int:
    quote = ""
    while pos < len(source):
        ch = source[pos]
        if quote:
            if ch == "\\" and quote == '"':
                pos += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"`'":
            quote = ch
        elif source.startswith("}}", pos):
            return pos
        pos += 1
    return -1
