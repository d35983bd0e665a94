"""The CA flags of ``swarm init`` and ``swarm update``, parsed as docker's (cli/command/swarm/
opts.go): ``--external-ca protocol=cfssl,url=https://...[,cacert=FILE]`` (repeatable), and, on
init only (docker has them on ``swarm ca --rotate``), ``--ca-cert`` / ``--ca-key`` PEM files."""

from __future__ import annotations

import csv
import re
from typing import Any

import click

from shoal.cli import flagtypes as ft
from shoal.cli.command import changed
from shoal.cli.errors import CliError

__all__ = ["EXTERNAL_CA", "PEM_FILE", "merge_ca_flags", "parse_external_ca", "read_pem_file"]

_PEM = re.compile(rb"-----BEGIN [^-]+-----.+?-----END [^-]+-----", re.DOTALL)


def _read(path: str) -> bytes:
    """A file's bytes; the error as Go's os.ReadFile words it."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ValueError(f"open {path}: {reason}") from exc


def read_pem_file(path: str) -> str:
    """docker's PEMFile: the contents of a file that holds a PEM block."""
    data = _read(path)
    if not _PEM.search(data):
        raise ValueError("file contents must be in PEM format")
    return data.decode()


def parse_external_ca(value: str) -> dict[str, Any]:
    """One ExternalCA as the API takes it (keys case-insensitive, other keys go to Options)."""
    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration) as exc:
        raise ValueError(str(exc)) from exc
    external: dict[str, Any] = {"Protocol": "", "URL": "", "Options": {}}
    seen = set()
    for field in fields:
        key, sep, val = field.partition("=")
        if not sep:
            raise ValueError(f"invalid field '{field}' must be a key=value pair")
        name = key.lower()
        seen.add(name)
        if name == "protocol":
            if val.lower() != "cfssl":
                raise ValueError(f"unrecognized external CA protocol {val}")
            external["Protocol"] = "cfssl"
        elif name == "url":
            external["URL"] = val
        elif name == "cacert":
            try:
                data = _read(val)
            except ValueError as exc:
                raise ValueError(f"unable to read CA cert for external CA: {exc}") from exc
            if not _PEM.search(data):
                raise ValueError("CA cert for external CA must be in PEM format")
            external["CACert"] = data.decode()
        else:
            external["Options"][key] = val
    if "protocol" not in seen:
        raise ValueError("the external-ca option needs a protocol= parameter")
    if "url" not in seen:
        raise ValueError("the external-ca option needs a url= parameter")
    if not external["Options"]:
        del external["Options"]  # Go's omitempty
    return external


EXTERNAL_CA = ft.GoValue("external-ca", parse_external_ca)
PEM_FILE = ft.GoValue("pem-file", read_pem_file)


def merge_ca_flags(spec: dict[str, Any], ctx: click.Context) -> None:
    """docker's mergeSwarmSpecCAFlags: the external CAs replace the spec's; on init, ``--ca-cert``
    is the swarm's root (``SigningCACert``) and the CACert of external CAs given without one."""
    params = ctx.params
    config = spec.setdefault("CAConfig", {})
    ca_cert: str | None = params.get("ca_cert")
    ca_key: str | None = params.get("ca_key")
    if changed(ctx, "external_ca"):
        config["ExternalCAs"] = [dict(ca) for ca in params["external_ca"]]
        for ca in config["ExternalCAs"]:
            if ca_cert and not ca.get("CACert"):
                ca["CACert"] = ca_cert
    if ca_cert:
        if not ca_key and not changed(ctx, "external_ca"):
            raise CliError("the --ca-cert flag requires that a --ca-key flag and/or --external-ca "
                           "flag be provided as well")
        config["SigningCACert"] = ca_cert
    if ca_key:
        config["SigningCAKey"] = ca_key
