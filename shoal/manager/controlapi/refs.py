"""A service's references to secrets and configs (``ContainerSpec.Secrets`` / ``.Configs``, dicts
here since ContainerSpec passes through): their shape (swarmkit controlapi/service.go
validateSecretRefsSpec, validateConfigRefsSpec; moby's convert for File/Runtime), that each
names an existing object (checkSecretExistence, checkConfigExistence), and which services use
an object (what a remove refuses)."""

from __future__ import annotations

from typing import Any

from shoal.errors import InvalidArgument
from shoal.manager.controlapi.status import invalid
from shoal.model.objects import Config, Secret, Service
from shoal.store.tables import Tables

__all__ = ["check_refs_exist", "services_using", "validate_refs"]

# (ContainerSpec key, what, ID key, name key)
_KINDS = (("Secrets", "secret", "SecretID", "SecretName"),
          ("Configs", "config", "ConfigID", "ConfigName"))


def _refs(cs: dict[str, Any], key: str) -> list[Any]:
    refs = cs.get(key) or []
    if not isinstance(refs, list):
        raise InvalidArgument(f"invalid JSON in request body: ContainerSpec.{key} must be a list")
    return refs


def _check_file_types(file: dict[str, Any]) -> None:
    """What Go's decoding of FileTarget refuses (UID, GID strings; Mode a uint32), so a node
    never meets them."""
    for key in ("UID", "GID"):
        if not isinstance(file.get(key, ""), str):
            raise InvalidArgument(f"invalid JSON in request body: File.{key} must be a string")
    mode = file.get("Mode", 0)
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode < 2**32:
        raise InvalidArgument("invalid JSON in request body: File.Mode must be a file mode (uint32)")


def validate_refs(cs: dict[str, Any]) -> None:
    for key, what, id_key, name_key in _KINDS:
        targets: dict[str, str] = {}
        for ref in _refs(cs, key):
            if not isinstance(ref, dict) or not ref.get(id_key) or not ref.get(name_key):
                raise invalid(f"malformed {what} reference")
            name = str(ref[name_key])
            file, runtime = ref.get("File"), ref.get("Runtime")
            if what == "config":
                # moby's convert refuses these before swarmkit sees them (plain 400s).
                if file is None and runtime is None:
                    raise InvalidArgument("either File or Runtime should be set")
                if file is not None and runtime is not None:
                    raise InvalidArgument("cannot specify both File and Runtime")
                if runtime is not None:
                    raise invalid(f"config reference {name!r} has a Runtime target (a credential "
                                  "spec): Shoal runs Linux containers only and does not support it")
            if file is None:
                raise invalid(f"malformed {what} reference, no target provided")
            target = file.get("Name") if isinstance(file, dict) else None
            if not target or not isinstance(target, str):
                raise invalid(f"malformed file {what} reference, invalid target file name provided")
            _check_file_types(file)
            if target in targets:
                raise invalid(f"{what} references '{targets[target]}' and '{name}' have a "
                              f"conflicting target: '{target}'")
            targets[target] = name
    cred = ((cs.get("Privileges") or {}).get("CredentialSpec") or {}).get("Config")
    if cred:  # it would need a Runtime config reference, refused above
        raise invalid(f"CredentialSpec references config '{cred}', but that config isn't in config "
                      "references with RuntimeTarget")


def check_refs_exist(view: Tables, cs: dict[str, Any]) -> None:
    """Each reference names an object by ID whose name is the one given (after validate_refs)."""
    for key, what, id_key, name_key in _KINDS:
        cls: type[Secret | Config] = Secret if what == "secret" else Config
        missing = []
        for ref in _refs(cs, key):
            obj = view.get(cls, ref[id_key])
            if obj is None or obj.spec.name != ref[name_key]:
                missing.append(str(ref[name_key]))
        if missing:
            plural = "s" if len(missing) > 1 else ""
            raise invalid(f"{what}{plural} not found: {', '.join(missing)}")


def services_using(view: Tables, obj: Secret | Config) -> list[str]:
    """The names of the services whose spec references ``obj`` (their tasks are not looked at,
    as swarmkit)."""
    key, id_key = ("Secrets", "SecretID") if isinstance(obj, Secret) else ("Configs", "ConfigID")
    names = []
    for svc in view.all(Service):
        refs = (svc.spec.task_template.container_spec or {}).get(key) or []
        if any(isinstance(r, dict) and r.get(id_key) == obj.id for r in refs):
            names.append(svc.spec.name)
    return sorted(names)
