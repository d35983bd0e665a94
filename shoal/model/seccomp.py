"""Docker's seccomp profile format (moby/profiles ``seccomp.Seccomp``), as typed data.

It is the OCI ``linux.seccomp`` section plus rules that apply only to some containers: a rule's
``includes`` / ``excludes`` name capabilities, architectures (Go's names: ``amd64``, ``arm64``)
and a minimum kernel; ``archMap`` lists an architecture's sub-architectures. The control API
decodes a service's custom profile (``Privileges.Seccomp.Profile``) with `decode_profile` to
refuse a bad one at create time; the runc executor writes its default profile in these types and
renders either for one container (shoal.exec.runc.seccomp).
"""

from __future__ import annotations

import re

import msgspec

from shoal.errors import InvalidArgument

__all__ = ["ACTIONS", "ArchMap", "Arg", "Filter", "Profile", "Rule", "decode_profile"]

# What runc 1.1 and libseccomp 2.5 accept. SCMP_ACT_NOTIFY needs a listener (listenerPath),
# which Shoal has not: refused rather than written into a spec runc would reject.
ACTIONS = frozenset({"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                     "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW",
                     "SCMP_ACT_LOG"})
_OPS = frozenset({"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
                  "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"})
_ARCHES = frozenset("SCMP_ARCH_" + a for a in (
    "X86", "X86_64", "X32", "ARM", "AARCH64", "MIPS", "MIPS64", "MIPS64N32", "MIPSEL",
    "MIPSEL64", "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390", "S390X", "PARISC", "PARISC64",
    "RISCV64", "LOONGARCH64"))
_KERNEL = re.compile(r"^\d{1,3}\.\d{1,3}$")


class _Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    pass


class Arg(_Strict, frozen=True):
    index: int
    value: int
    op: str
    value_two: int = 0


class Filter(_Strict, frozen=True):
    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: str = ""  # "<kernel>.<major>", e.g. "4.8"


class Rule(_Strict, frozen=True):
    action: str
    names: tuple[str, ...] = ()
    name: str = ""  # the older spelling of a one-name rule
    errno_ret: int | None = None
    args: tuple[Arg, ...] = ()
    comment: str = ""
    includes: Filter | None = None
    excludes: Filter | None = None


class ArchMap(_Strict, frozen=True):
    architecture: str
    sub_architectures: tuple[str, ...] | None = None


class Profile(_Strict, frozen=True):
    default_action: str = ""
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    arch_map: tuple[ArchMap, ...] = ()
    flags: tuple[str, ...] = ()
    listener_path: str = ""
    listener_metadata: str = ""
    syscalls: tuple[Rule, ...] = ()


def _bad(detail: str) -> InvalidArgument:
    return InvalidArgument(f"invalid Privileges.Seccomp.Profile: {detail}")


def _check_action(action: str, where: str) -> None:
    if action not in ACTIONS:
        raise _bad(f"{where}: unknown or unsupported action {action!r} "
                   f"(one of {', '.join(sorted(ACTIONS))})")


def _check_rule(i: int, rule: Rule) -> None:
    where = f"syscalls[{i}]"
    if rule.name and rule.names:
        raise _bad(f"{where}: both 'name' and 'names' are specified, use either 'name' or 'names'")
    if not rule.name and not rule.names:
        raise _bad(f"{where}: no syscall names")
    _check_action(rule.action, where)
    for arg in rule.args:
        if arg.op not in _OPS:
            raise _bad(f"{where}: unknown operator {arg.op!r}")
        if not 0 <= arg.index <= 5 or not 0 <= arg.value < 2**64 or not 0 <= arg.value_two < 2**64:
            raise _bad(f"{where}: argument index must be 0-5 and values unsigned 64-bit")
    for f in (rule.includes, rule.excludes):
        if f is not None and f.min_kernel and not _KERNEL.match(f.min_kernel):
            raise _bad(f"{where}: invalid kernel version {f.min_kernel!r}, expected "
                       "\"<kernel>.<major>\"")


def decode_profile(data: bytes | str) -> Profile:
    """A profile's JSON as a Profile; InvalidArgument naming what is wrong. Unknown keys are
    refused (Go would ignore them: here they would be a setting silently dropped)."""
    try:
        profile = msgspec.json.decode(data, type=Profile)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _bad(f"decoding seccomp profile failed: {exc}") from None
    if not profile.default_action:
        raise _bad("defaultAction must be set (for no seccomp filter use Mode \"unconfined\")")
    _check_action(profile.default_action, "defaultAction")
    if profile.architectures and profile.arch_map:
        raise _bad("both 'architectures' and 'archMap' are specified, use either "
                   "'architectures' or 'archMap'")
    arches = [*profile.architectures, *(a.architecture for a in profile.arch_map),
              *(s for a in profile.arch_map for s in a.sub_architectures or ())]
    unknown = sorted(set(arches) - _ARCHES)
    if unknown:
        raise _bad(f"unknown architecture {unknown[0]!r}")
    if profile.listener_path or profile.listener_metadata:
        raise _bad("listenerPath (SCMP_ACT_NOTIFY) is not supported by Shoal")
    if profile.flags:  # runc 1.1 (Debian 12's) refuses any: "not yet supported by runc"
        raise _bad("flags are not supported by Shoal (runc 1.1 applies none)")
    for i, rule in enumerate(profile.syscalls):
        _check_rule(i, rule)
    return profile
