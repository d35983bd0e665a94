"""What a ContainerSpec asks of its container's sandbox: ``CapabilityAdd`` / ``CapabilityDrop``
and ``Privileges`` (NoNewPrivileges, Seccomp, AppArmor, SELinuxContext, CredentialSpec), read
into one typed value.

The control API calls `sandbox` on every service create and update, so what Shoal cannot honour
is refused there, naming the field, instead of being stored and ignored; the runc executor calls
it again to build the container (moby ``oci/caps``, ``executor/container.applyPrivileges``).
Shoal never applies an AppArmor profile or an SELinux label: what Docker does on a host without
AppArmor or SELinux. So AppArmor ``default``/``disabled`` and SELinux ``Disable`` are honoured;
a label or a credential spec (Windows only) is refused.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from shoal.errors import InvalidArgument
from shoal.model.seccomp import Profile, decode_profile

__all__ = ["DEFAULT_CAPS", "KNOWN_CAPS", "Sandbox", "effective_caps", "normalize_caps",
           "sandbox"]

# Every capability Linux has named, in bit order (0 = CHOWN ... 40 = CHECKPOINT_RESTORE).
KNOWN_CAPS = tuple("CAP_" + c for c in (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"))
# Docker's default set (moby oci/caps/defaults.go), in its order.
DEFAULT_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
ALL = "ALL"
_PRIVILEGES = {"CredentialSpec", "SELinuxContext", "Seccomp", "AppArmor", "NoNewPrivileges"}

SeccompMode = Literal["default", "unconfined", "custom"]


@dataclass(frozen=True, slots=True)
class Sandbox:
    cap_add: tuple[str, ...] = ()  # normalized: "CAP_X" or "ALL"
    cap_drop: tuple[str, ...] = ()
    no_new_privileges: bool = False
    seccomp: SeccompMode = "default"
    seccomp_profile: Profile | None = None  # with seccomp == "custom"


def normalize_caps(names: Any, field: str = "CapabilityAdd") -> tuple[str, ...]:
    """Upper-cased, ``CAP_``-prefixed names, ``ALL`` kept (moby NormalizeLegacyCapabilities)."""
    if names is None:
        return ()
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidArgument(f"invalid JSON in request body: ContainerSpec.{field} must be a "
                              "list of strings")
    out: list[str] = []
    for name in names:
        cap = name.strip().upper()
        if cap != ALL and not cap.startswith("CAP_"):
            cap = "CAP_" + cap
        if cap != ALL and cap not in KNOWN_CAPS:
            raise InvalidArgument(f"unknown capability: \"{cap}\"")
        if cap not in out:
            out.append(cap)
    return tuple(out)


def effective_caps(add: Collection[str], drop: Collection[str], *,
                   available: Collection[str]) -> tuple[str, ...]:
    """The container's capabilities (moby TweakCapabilities): ``ALL`` added is every capability
    ``available`` to the node except those dropped; ``ALL`` dropped leaves only the added ones;
    else the defaults minus the dropped plus the added. An added capability the node lacks is
    refused as Docker does (runc could not grant it)."""
    missing = [c for c in add if c != ALL and c not in available]
    if missing:
        raise InvalidArgument("capability not supported by your kernel or not available in the "
                              f"current environment: \"{missing[0]}\"")
    if ALL in add:
        return tuple(c for c in KNOWN_CAPS if c in available and c not in drop)
    if ALL in drop:
        return tuple(add)
    kept = [c for c in DEFAULT_CAPS if c not in drop]
    return tuple(kept + [c for c in add if c not in kept])


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid JSON in request body: {field} must be an object")
    return value


def _seccomp(raw: dict[str, Any]) -> tuple[SeccompMode, Profile | None]:
    mode, profile = raw.get("Mode") or "default", raw.get("Profile")
    if mode not in ("default", "unconfined", "custom"):
        raise InvalidArgument(f"invalid Privileges.Seccomp.Mode {mode!r}: use \"default\", "
                              "\"unconfined\" or \"custom\"")
    if mode != "custom":
        if profile:
            raise InvalidArgument("Privileges.Seccomp.Profile is only used with Mode \"custom\" "
                                  f"(Mode is {mode!r})")
        return ("unconfined" if mode == "unconfined" else "default"), None
    if not profile or not isinstance(profile, str):
        raise InvalidArgument("Privileges.Seccomp.Mode \"custom\" needs a Profile (the profile's "
                              "JSON, base64-encoded as any []byte of the API)")
    try:
        data = base64.b64decode(profile, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument(f"invalid JSON in request body: Privileges.Seccomp.Profile: "
                              f"illegal base64 data: {exc}") from None
    return "custom", decode_profile(data)


def _refuse_unsupported(privileges: dict[str, Any]) -> None:
    cred = _object(privileges.get("CredentialSpec"), "Privileges.CredentialSpec")
    if any(cred.get(k) for k in ("Config", "File", "Registry")):
        raise InvalidArgument("Privileges.CredentialSpec is not supported: credential specs are "
                              "for Windows containers, and Shoal runs Linux containers only")
    selinux = _object(privileges.get("SELinuxContext"), "Privileges.SELinuxContext")
    labels = [k for k in ("User", "Role", "Type", "Level") if selinux.get(k)]
    if labels:
        raise InvalidArgument(f"Privileges.SELinuxContext.{labels[0]} is not supported: Shoal "
                              "does not label containers with SELinux (only Disable is accepted)")
    apparmor = _object(privileges.get("AppArmor"), "Privileges.AppArmor")
    mode = apparmor.get("Mode") or "default"
    if mode not in ("default", "disabled"):
        raise InvalidArgument(f"invalid Privileges.AppArmor.Mode {mode!r}: use \"default\" or "
                              "\"disabled\" (Shoal applies no AppArmor profile)")


def sandbox(container_spec: dict[str, Any]) -> Sandbox:
    """The sandbox a ContainerSpec asks for; InvalidArgument for what Shoal cannot honour."""
    add = normalize_caps(container_spec.get("CapabilityAdd"), "CapabilityAdd")
    drop = normalize_caps(container_spec.get("CapabilityDrop"), "CapabilityDrop")
    privileges = _object(container_spec.get("Privileges"), "ContainerSpec.Privileges")
    unknown = sorted(set(privileges) - _PRIVILEGES)
    if unknown:
        raise InvalidArgument(f"Privileges.{unknown[0]} is not supported by Shoal")
    _refuse_unsupported(privileges)
    nnp = privileges.get("NoNewPrivileges", False)
    if not isinstance(nnp, bool):
        raise InvalidArgument("invalid JSON in request body: Privileges.NoNewPrivileges must be "
                              "a boolean")
    mode, profile = _seccomp(_object(privileges.get("Seccomp"), "Privileges.Seccomp"))
    return Sandbox(cap_add=add, cap_drop=drop, no_new_privileges=nnp, seccomp=mode,
                   seccomp_profile=profile)
