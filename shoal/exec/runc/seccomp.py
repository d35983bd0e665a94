"""Docker's default seccomp profile, and the OCI ``linux.seccomp`` section rendered for one
container from it or from a service's custom profile (shoal.model.seccomp).

Same semantics as moby's ``profiles/seccomp/default.json``: anything not listed fails with EPERM;
about 360 syscalls are allowed to everyone; some only with a capability in the container's
bounding set (``mount``, ``unshare``, ``setns``... with CAP_SYS_ADMIN); some only with given
arguments (``personality``, ``socket`` but AF_ALG and AF_VSOCK, ``clone`` without namespace
flags unless CAP_SYS_ADMIN). Written here as groups by purpose for x86_64 and aarch64, Shoal's
machines. Syscalls that runc's libseccomp does not know (newer than it) are skipped by runc.
Called by shoal.exec.runc.spec with the container's effective capabilities.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Collection
from typing import Any

from shoal.model.seccomp import ArchMap, Arg, Filter, Profile, Rule

__all__ = ["DEFAULT_PROFILE", "render"]

ALLOW, ERRNO = "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"
EPERM, ENOSYS = 1, 38

# --- allowed to every container, by purpose ----------------------------------------------
_FILES = (
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range",
    "creat", "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
    "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
    "fcntl", "fcntl64", "fdatasync", "flock", "fstat", "fstat64", "fstatat64", "fstatfs",
    "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futimesat", "getcwd", "getdents",
    "getdents64", "ioctl", "lchown", "lchown32", "link", "linkat", "_llseek", "lseek", "lstat",
    "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "name_to_handle_at", "newfstatat", "open",
    "openat", "openat2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2",
    "read", "readahead", "readlink", "readlinkat", "readv", "rename", "renameat", "renameat2",
    "rmdir", "sendfile", "sendfile64", "splice", "stat", "stat64", "statfs", "statfs64", "statx",
    "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate", "truncate64",
    "umask", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes",
    "vmsplice", "write", "writev", "cachestat", "listmount", "statmount")
_XATTRS = (
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "getxattrat",
    "lgetxattr", "listxattr", "listxattrat", "llistxattr", "lremovexattr", "lsetxattr",
    "removexattr", "removexattrat", "setxattr", "setxattrat")
_WAITING = (  # polling, events, notification, async I/O
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
    "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "poll", "ppoll", "ppoll_time64",
    "pselect6", "pselect6_time64", "select", "_newselect", "signalfd", "signalfd4",
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
    "io_setup", "io_submit")
_PROCESSES = (
    "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "vfork", "getcpu",
    "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrlimit", "get_robust_list",
    "getrandom", "getrusage", "getsid", "get_thread_area", "gettid", "ioprio_get", "ioprio_set",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "map_shadow_stack",
    "pidfd_open", "pidfd_send_signal", "prctl", "prlimit64", "process_mrelease",
    "restart_syscall", "riscv_hwprobe", "rseq", "seccomp", "set_robust_list", "set_thread_area",
    "set_tid_address", "setpgid", "setpriority", "setrlimit", "setsid", "sysinfo", "times",
    "ugetrlimit", "uname", "uretprobe", "wait4", "waitid", "waitpid",
    "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield")
_IDS = (
    "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getresgid", "getresgid32", "getresuid", "getresuid32", "getuid", "getuid32",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
    "setgroups32", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32")
_SIGNALS = (
    "alarm", "kill", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaltstack", "sigprocmask", "sigreturn",
    "tgkill", "tkill")
_MEMORY = (
    "brk", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "mprotect", "mremap", "mseal", "msync", "munlock", "munlockall",
    "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages")
_TIME = (
    "adjtimex", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "getitimer",
    "gettimeofday", "nanosleep", "setitimer", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64")
_NETWORK = (  # socket() itself has an argument rule below
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen",
    "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg",
    "sendto", "setsockopt", "shutdown", "socketcall", "socketpair")
_IPC = (  # pipes, SysV and POSIX message queues, semaphores, shared memory
    "pipe", "pipe2", "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl",
    "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget")
# Docker allows these from kernel 4.8 on (before, ptrace could bypass seccomp); Shoal's kernels
# (Debian 12 and 13) are all newer.
_TRACING = ("process_vm_readv", "process_vm_writev", "ptrace")

# --- allowed with a capability in the bounding set ----------------------------------------
_BY_CAP = {
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
    "CAP_SYS_ADMIN": (
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
        "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
        "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare"),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                       "process_vm_writev", "ptrace"),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
}

# --- allowed on one architecture (Go's names, as in a profile's "arches") ----------------
_BY_ARCH = {
    "amd64": ("arch_prctl", "modify_ldt"),
    "arm64": ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
              "cacheflush", "set_tls"),
}

# --- allowed with some arguments ----------------------------------------------------------
# socket(): every family but AF_ALG (the kernel's crypto API) and AF_VSOCK (a path to the host).
AF_ALG, AF_VSOCK = 38, 40
# personality(): Linux (0), UNAME26 (0x0020000), their PER_LINUX32 variants, and the query.
_PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
# clone() without CAP_SYS_ADMIN: none of the namespace flags (NEWNS|NEWCGROUP|NEWUTS|NEWIPC|
# NEWUSER|NEWPID|NEWNET) in its first argument.
_CLONE_NS_FLAGS = 0x7E020000


def _rules() -> tuple[Rule, ...]:
    everyone = (*_FILES, *_XATTRS, *_WAITING, *_PROCESSES, *_IDS, *_SIGNALS, *_MEMORY, *_TIME,
                *_NETWORK, *_IPC, *_TRACING)
    socket = [Arg(index=0, value=AF_ALG, op="SCMP_CMP_LT"),
              Arg(index=0, value=AF_ALG + 1, op="SCMP_CMP_EQ"),
              Arg(index=0, value=AF_VSOCK, op="SCMP_CMP_GT")]
    no_admin = Filter(caps=("CAP_SYS_ADMIN",))
    return (
        Rule(action=ALLOW, names=tuple(sorted(everyone))),
        # one rule per argument value: a rule's args are ANDed, the rules ORed
        *(Rule(action=ALLOW, names=("socket",), args=(a,)) for a in socket),
        *(Rule(action=ALLOW, names=("personality",), args=(Arg(index=0, value=p, op="SCMP_CMP_EQ"),))
          for p in _PERSONAS),
        *(Rule(action=ALLOW, names=names, includes=Filter(arches=(arch,)))
          for arch, names in _BY_ARCH.items()),
        *(Rule(action=ALLOW, names=names, includes=Filter(caps=(cap,)))
          for cap, names in _BY_CAP.items()),
        Rule(action=ALLOW, names=("clone",), excludes=no_admin,
             args=(Arg(index=0, value=_CLONE_NS_FLAGS, op="SCMP_CMP_MASKED_EQ"),)),
        # glibc falls back to clone() on ENOSYS, which the rule above then checks
        Rule(action=ERRNO, errno_ret=ENOSYS, names=("clone3",), excludes=no_admin),
    )


# x86_64 runs i386 and x32 binaries too; aarch64 runs arm ones.
_ARCHES = (ArchMap(architecture="SCMP_ARCH_X86_64",
                   sub_architectures=("SCMP_ARCH_X86", "SCMP_ARCH_X32")),
           ArchMap(architecture="SCMP_ARCH_AARCH64", sub_architectures=("SCMP_ARCH_ARM",)))

DEFAULT_PROFILE = Profile(default_action=ERRNO, default_errno_ret=EPERM, arch_map=_ARCHES,
                          syscalls=_rules())

# uname -m -> (Go's name, as rules' "arches" say; libseccomp's)
_MACHINES = {"x86_64": ("amd64", "SCMP_ARCH_X86_64"), "aarch64": ("arm64", "SCMP_ARCH_AARCH64")}


def _kernel() -> tuple[int, int]:
    major, minor, *_ = (os.uname().release.split("-")[0] + ".0").split(".")
    return int(major), int(minor)


def _applies(rule: Rule, caps: Collection[str], arch: str, kernel: tuple[int, int]) -> bool:
    """moby's includes/excludes: every cap and one of the arches included, no excluded one."""
    def since(version: str) -> bool:
        major, minor = version.split(".")
        return kernel >= (int(major), int(minor))
    inc, exc = rule.includes, rule.excludes
    if inc is not None and ((inc.arches and arch not in inc.arches)
                            or any(c not in caps for c in inc.caps)
                            or (inc.min_kernel and not since(inc.min_kernel))):
        return False
    return not (exc is not None and (arch in exc.arches or any(c in caps for c in exc.caps)
                                     or (exc.min_kernel and since(exc.min_kernel))))


def _syscall(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"names": list(rule.names or (rule.name,)), "action": rule.action}
    if rule.errno_ret is not None:
        out["errnoRet"] = rule.errno_ret
    if rule.args:
        out["args"] = [{"index": a.index, "value": a.value, "op": a.op,
                        **({"valueTwo": a.value_two} if a.value_two else {})} for a in rule.args]
    return out


def render(profile: Profile, caps: Collection[str], *, machine: str | None = None,
           kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` of ``profile`` for a container whose bounding set is ``caps``,
    on this machine (or ``machine``, ``uname -m``) and kernel."""
    arch, native = _MACHINES.get(machine or platform.machine(), (machine or "", ""))
    kernel = kernel or _kernel()
    out: dict[str, Any] = {"defaultAction": profile.default_action}
    if profile.default_errno_ret is not None:
        out["defaultErrnoRet"] = profile.default_errno_ret
    arches = list(profile.architectures)
    for entry in profile.arch_map:
        if entry.architecture == native:
            arches = [native, *(entry.sub_architectures or ())]
    if arches:
        out["architectures"] = arches
    out["syscalls"] = [_syscall(r) for r in profile.syscalls if _applies(r, caps, arch, kernel)]
    return out
