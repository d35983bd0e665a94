"""A task's log driver (``TaskSpec.LogDriver``: ``--log-driver``, ``--log-opt``), read into one
typed value. The control API calls `log_config` on every service create and update, so a driver
or option the nodes cannot honour is refused there, by name; the runc executor calls it again.

Shoal's nodes write Docker's ``json-file`` format (what ``docker service logs`` reads) or
nothing (``none``). Options as Docker's json-file driver reads them: ``max-size`` (go-units'
FromHumanSize: ``10m`` is 10,000,000 bytes, ``-1`` unlimited) and ``max-file`` (at least 1);
an option left out takes the node's ``--log-opt`` value when the driver is the node's own
(json-file), as dockerd merges its defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shoal.errors import InvalidArgument

__all__ = ["JSON_FILE", "NONE", "LogConfig", "log_config", "parse_size"]

JSON_FILE, NONE = "json-file", "none"
_JSON_FILE_OPTS = ("max-size", "max-file")
# json-file options Docker has and Shoal does not: refused by name rather than ignored
_UNSUPPORTED_OPTS = ("compress", "labels", "labels-regex", "env", "env-regex", "tag")
_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


@dataclass(frozen=True, slots=True)
class LogConfig:
    driver: str = JSON_FILE
    max_size: int | None = None  # bytes, 0: unlimited; None: the node's default
    max_files: int | None = None

    def limits(self, default_size: int, default_files: int) -> tuple[int, int]:
        """(max size, files) for the shim, the node's ``--log-opt`` filling what is unset."""
        size = default_size if self.max_size is None else self.max_size
        return size, default_files if self.max_files is None else self.max_files


def parse_size(text: str) -> int:
    """go-units FromHumanSize ("10m", "1.5g", "100kb": decimal units); ValueError if bad."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"invalid size: '{text}'")
    return int(float(match.group(1)) * _DECIMAL[(match.group(2) or "").lower()])


def _options(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise InvalidArgument("invalid JSON in request body: LogDriver.Options must be an "
                              "object of strings")
    return {str(k): v for k, v in raw.items()}


def _json_file(options: dict[str, str]) -> LogConfig:
    for key in options:
        if key in _UNSUPPORTED_OPTS:
            raise InvalidArgument(f"log-opt {key!r} of the json-file log driver is not "
                                  "supported by Shoal: only max-size and max-file are")
        if key not in _JSON_FILE_OPTS:
            raise InvalidArgument(f"unknown log opt '{key}' for json-file log driver")
    size = files = None
    if "max-size" in options:
        text = options["max-size"]
        try:
            size = 0 if text.strip() == "-1" else parse_size(text)
        except ValueError as exc:
            raise InvalidArgument(f"invalid log opt max-size: {exc}") from None
        if text.strip() != "-1" and size <= 0:
            raise InvalidArgument("invalid log opt max-size: max-size must be a positive number")
    if "max-file" in options:
        try:
            files = int(options["max-file"])
        except ValueError:
            raise InvalidArgument(f"invalid log opt max-file: strconv.Atoi: parsing "
                                  f"{options['max-file']!r}: invalid syntax") from None
        if files < 1:
            raise InvalidArgument("invalid log opt max-file: max-file cannot be less than 1")
    return LogConfig(JSON_FILE, size, files)


def log_config(log_driver: dict[str, Any] | None) -> LogConfig:
    """The log driver a TaskSpec asks for (none given: the node's json-file defaults);
    InvalidArgument for a driver or an option Shoal's nodes do not have."""
    if log_driver is None:
        return LogConfig()
    if not isinstance(log_driver, dict):
        raise InvalidArgument("invalid JSON in request body: LogDriver must be an object")
    name = log_driver.get("Name") or JSON_FILE
    options = _options(log_driver.get("Options"))
    if name == JSON_FILE:
        return _json_file(options)
    if name == NONE:
        if options:
            raise InvalidArgument(f"unknown log opt '{min(options)}' for none log driver")
        return LogConfig(NONE)
    raise InvalidArgument(f"log driver {name!r} is not supported by Shoal: its nodes write "
                          "json-file logs (--log-driver json-file, --log-opt max-size, "
                          "max-file) or none (--log-driver none)")
