"""Go's ``fmt`` printing of template values: ``%v`` (`go_print`), ``Sprint`` and ``Sprintf``."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from shoal.gotemplate.values import MISSING

__all__ = ["go_float", "go_print", "go_quote", "go_sprint", "go_sprintf"]


def go_float(value: float) -> str:
    """Go's ``%v`` for a float64: shortest digits, exponent below 1e-4 or from 1e6 (``1e+06``)."""
    if math.isnan(value) or math.isinf(value):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(value)]
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(str(d) for d in digits)
    point = len(text) + exponent  # position of the decimal point in the digit string
    exp = point - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def go_print(value: Any) -> str:
    """``fmt.Sprint(value)`` for JSON-ish values: ``map[a:1]``, ``[x y]``, ``<nil>``, ``true``."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{go_print(k)}:{go_print(value[k])}" for k in sorted(value)) + "]"
    json_fields = getattr(value, "json_fields", None)
    if callable(json_fields):
        return "{" + " ".join(go_print(v) for v in json_fields().values()) + "}"
    return str(value)


def go_sprint(args: list[Any]) -> str:
    """``fmt.Sprint``: a space between operands when neither side is a string."""
    out = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_print(arg))
    return "".join(out)


def go_quote(text: str) -> str:
    """``strconv.Quote`` for printable text."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'


_VERB = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d+)?)?([a-zA-Z%])")


def _type_name(value: Any) -> str:
    return {str: "string", int: "int", float: "float64", bool: "bool"}.get(
        type(value), "interface {}"
    )


def _format_one(verb: str, flags: str, precision: int | None, arg: Any) -> str:
    if verb in "vs":
        text = go_print(arg)
        return text[:precision] if precision is not None and verb == "s" else text
    if verb == "q":
        return go_quote(go_print(arg))
    if verb == "t":
        return go_print(arg) if isinstance(arg, bool) else f"%!t({_type_name(arg)}={go_print(arg)})"
    if verb == "d":
        if isinstance(arg, int) and not isinstance(arg, bool):
            return ("+" if "+" in flags and arg >= 0 else "") + str(arg)
        return f"%!d({_type_name(arg)}={go_print(arg)})"
    if verb in "xX":
        if isinstance(arg, int) and not isinstance(arg, bool):
            text = format(arg, "x")
        else:
            text = go_print(arg).encode().hex()
        return text.upper() if verb == "X" else text
    if verb in "feEgG" and isinstance(arg, (int, float)) and not isinstance(arg, bool):
        if verb in "gG" and precision is None:
            return go_float(float(arg))
        return f"%.*{verb}" % (6 if precision is None else precision, arg)
    if verb == "c" and isinstance(arg, int):
        return chr(arg)
    return f"%!{verb}({_type_name(arg)}={go_print(arg)})"


def go_sprintf(fmt: str, args: list[Any]) -> str:
    """``fmt.Sprintf`` for the common verbs (v s q d t x X f e g c %) with width and flags."""
    out: list[str] = []
    pos = 0
    index = 0
    for match in _VERB.finditer(fmt):
        out.append(fmt[pos : match.start()])
        pos = match.end()
        flags, width_text, precision_text, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        width = None
        if width_text == "*":
            width, index = int(args[index]) if index < len(args) else 0, index + 1
        elif width_text:
            width = int(width_text)
        precision = None
        if precision_text == "*":
            precision, index = int(args[index]) if index < len(args) else 0, index + 1
        elif precision_text is not None:
            precision = int(precision_text)
        elif "." in match.group(0):
            precision = 0
        if index >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        text = _format_one(verb, flags, precision, args[index])
        index += 1
        if width is not None and len(text) < width:
            if "-" in flags:
                text = text.ljust(width)
            elif "0" in flags and verb in "dfeEgGxX":
                sign = text[0] if text[:1] in "+-" else ""
                text = sign + text[len(sign) :].rjust(width - len(sign), "0")
            else:
                text = text.rjust(width)
        out.append(text)
    out.append(fmt[pos:])
    if index < len(args):
        extra = ", ".join(f"{_type_name(a)}={go_print(a)}" for a in args[index:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
