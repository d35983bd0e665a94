"""A linearizability checker for a history of client operations on a map of registers.

A :class:`History` records, from any number of threads or asyncio tasks, when each client
operation (``create``, ``write``, ``read`` or ``delete`` of one key) was invoked and how it
completed: ``ok``, ``fail`` (it definitely had no effect) or ``unknown`` (a timeout or a lost
connection: it may have taken effect at any time after its invocation, or never).

:func:`check` decides whether the history is linearizable: whether every key's operations can be
put in one sequential order that respects real time (an operation that returned before another
was invoked comes first) and the semantics of a register that is either absent or holds a value.
Keys are checked independently (a map of registers is linearizable iff each register is:
P-compositionality). Each key is searched with the Wing & Gong algorithm as improved by Lowe
(WGL, as in Knossos and Porcupine): a doubly linked list of call and return events in time
order, from which minimal operations are tentatively linearized (lifted out), backtracking on a
dead end, and memoizing each (set of linearized operations, register state) already explored.
Failed operations are dropped first. Unknown operations return at infinity and are optional:
the search succeeds once every ok operation is linearized, whichever unknown ones took effect.
Two sound reductions keep the search small: a legal op that leaves the state unchanged (a read)
is tried alone at its node, since it can be moved first; and unknown ops that no other op could
tell apart from "never happened" (invoked after every ok op returned, or writes of a value no
later read saw) are dropped. Values are compared with ``==``; None stands for "absent".
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

__all__ = ["History", "Operation", "Result", "SearchLimitExceeded", "check"]

KINDS = ("create", "write", "read", "delete")

Status = Literal["pending", "ok", "fail", "unknown"]


@dataclass(frozen=True)
class Operation:
    """One recorded operation.

    ``value`` is the argument (the value created or written; None for read and delete),
    ``result`` the value an ok read observed (None: the key was absent). ``ret`` is None unless
    the operation completed ok or failed. A ``pending`` operation is checked as ``unknown``.
    """

    id: int
    process: int | str
    f: str
    key: str
    value: object | None
    call: float
    ret: float | None = None
    status: Status = "pending"
    result: object | None = None


class History:
    """A thread-safe recorder of operations; its methods never block for long (asyncio-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._ops: list[Operation] = []

    def invoke(self, process: int | str, f: str, key: str, value: object | None = None) -> int:
        """Record that ``process`` is about to perform ``f`` on ``key``; return the op id."""
        if f not in KINDS:
            raise ValueError(f"unknown operation {f!r}: expected one of {', '.join(KINDS)}")
        if f in ("create", "write") and value is None:
            raise ValueError(f"{f} needs a value (None means 'absent')")
        with self._lock:
            op_id = len(self._ops)
            self._ops.append(Operation(op_id, process, f, key, value, self._clock()))
            return op_id

    def ok(self, op_id: int, value: object | None = None) -> None:
        """Record that the op took effect; for a read, ``value`` is what it saw (None: absent)."""
        self._complete(op_id, "ok", value)

    def fail(self, op_id: int) -> None:
        """Record that the op definitely did not take effect."""
        self._complete(op_id, "fail", None)

    def unknown(self, op_id: int) -> None:
        """Record that the op may or may not have taken effect (timeout, connection lost)."""
        self._complete(op_id, "unknown", None)

    def _complete(self, op_id: int, status: Status, value: object | None) -> None:
        with self._lock:
            if not 0 <= op_id < len(self._ops):
                raise ValueError(f"no operation #{op_id}")
            op = self._ops[op_id]
            if op.status != "pending":
                raise ValueError(f"operation #{op_id} already completed ({op.status})")
            ret = None if status == "unknown" else self._clock()
            result = value if op.f == "read" else None
            self._ops[op_id] = replace(op, ret=ret, status=status, result=result)

    def ops(self) -> list[Operation]:
        """A snapshot of the operations recorded so far, in invocation order."""
        with self._lock:
            return list(self._ops)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ops)


@dataclass(frozen=True)
class Result:
    """The verdict: ``ok``, or the first ``key`` found not linearizable and why."""

    ok: bool
    key: str | None = None
    explanation: str = ""

    def __bool__(self) -> bool:
        return self.ok


class SearchLimitExceeded(RuntimeError):
    """The search for one key took more than ``max_steps`` steps."""

    def __init__(self, key: str, steps: int, n_ops: int) -> None:
        super().__init__(
            f"linearizability search for key {key!r} ({n_ops} ops) gave up after {steps} steps"
        )
        self.key = key
        self.steps = steps


def check(history: History, max_steps: int = 2_000_000) -> Result:
    """Check that ``history`` is linearizable, key by key, in order of first invocation.

    Raises :class:`SearchLimitExceeded` when one key's search exceeds ``max_steps`` steps.
    """
    ops = history.ops()
    if not ops:
        return Result(ok=True)
    t0 = min(op.call for op in ops)
    by_key: dict[str, list[Operation]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    for key, key_ops in by_key.items():
        result = _check_key(key, key_ops, max_steps, t0)
        if not result.ok:
            return result
    return Result(ok=True)


# Register states and op arguments are interned values: ABSENT, or an index into the distinct
# values of the key. A transition to ILLEGAL means the op cannot take effect in that state.
_ABSENT = -1
_ILLEGAL = -2
_CREATE, _WRITE, _READ, _DELETE = range(4)
_NIL = -1


class _Interner:
    """Numbers values by equality, so that states are small hashable ints."""

    def __init__(self) -> None:
        self.values: list[object] = []
        self._hashable: dict[object, int] = {}

    def __call__(self, value: object) -> int:
        if value is None:
            return _ABSENT
        try:
            hash(value)
        except TypeError:  # unhashable, e.g. a dict: compare with ==
            for i, known in enumerate(self.values):
                if known == value:
                    return i
            self.values.append(value)
            return len(self.values) - 1
        found = self._hashable.setdefault(value, len(self.values))
        if found == len(self.values):
            self.values.append(value)
        return found


def _relevant(ops: list[Operation], intern: _Interner) -> list[Operation]:
    """The ops that may constrain the search: ok ops, and unknown ones that may matter."""
    kept = [op for op in ops if op.status == "ok" or (op.status != "fail" and op.f != "read")]
    last_ret = max((op.ret for op in kept if op.status == "ok" and op.ret is not None),
                   default=None)
    if last_ret is None:
        return []
    seen_until: dict[int, float] = {}  # value -> when the last read that saw it returned
    for op in kept:
        if op.f == "read" and op.ret is not None:
            v = intern(op.result)
            seen_until[v] = max(op.ret, seen_until.get(v, op.ret))

    def matters(op: Operation) -> bool:
        if op.status == "ok":
            return True
        # An unknown op invoked after every ok op returned can be linearized last, or never.
        if op.call > last_ret:
            return False
        # An unknown write takes a present key to another value: if no read that may follow
        # it sees that value, leaving it out changes nothing any other op can tell.
        return op.f != "write" or seen_until.get(intern(op.value), -math.inf) >= op.call

    return [op for op in kept if matters(op)]


def _check_key(key: str, ops: list[Operation], max_steps: int, t0: float) -> Result:
    intern = _Interner()
    kept = _relevant(ops, intern)
    n = len(kept)
    fcode = [KINDS.index(op.f) for op in kept]
    arg = [intern(op.result if op.f == "read" else op.value) for op in kept]

    # Events sorted by time; a call sorts before a return at the same instant (so the two ops
    # count as concurrent: the lenient choice). Entry 0 is the list head.
    events: list[tuple[float, int, int]] = []
    for i, op in enumerate(kept):
        events.append((op.call, 0, i))
        if op.status == "ok":
            events.append((max(op.ret if op.ret is not None else op.call, op.call), 1, i))
    events.sort()
    size = len(events) + 1
    nxt = [e + 1 for e in range(size)]
    nxt[-1] = _NIL
    prv = [e - 1 for e in range(size)]
    entry_op = [-1] + [i for _, _, i in events]
    is_call = [False] + [kind == 0 for _, kind, _ in events]
    call_entry = [0] * n
    match = [_NIL] * size  # call entry -> its return entry (NIL for an unknown op)
    for e in range(1, size):
        if is_call[e]:
            call_entry[entry_op[e]] = e
        else:
            match[call_entry[entry_op[e]]] = e

    state = _ABSENT
    linearized = 0
    # (call entry lifted, state before it, whether it was the only choice tried at its node)
    stack: list[tuple[int, int, bool]] = []
    cache: set[tuple[int, int]] = set()
    remaining = sum(1 for op in kept if op.status == "ok")
    best_depth = -1
    best: tuple[list[int], int, list[int]] = ([], _ABSENT, [])
    steps = 0
    e = nxt[0]
    while remaining:
        steps += 1
        if steps > max_steps:
            raise SearchLimitExceeded(key, steps - 1, n)
        if is_call[e]:
            i = entry_op[e]
            f = fcode[i]
            if f == _READ:
                new = state if arg[i] == state else _ILLEGAL
            elif f == _CREATE:
                new = arg[i] if state == _ABSENT else _ILLEGAL
            elif f == _WRITE:
                new = arg[i] if state != _ABSENT else _ILLEGAL
            else:
                new = _ABSENT if state != _ABSENT else _ILLEGAL
            if new == _ILLEGAL:
                e = nxt[e]
                continue
            lin = linearized | (1 << i)
            # An op that may go next and leaves the state as it is (a read, or a write of the
            # value held) can be moved first in any completion from here: try only it.
            only = new == state
            if (lin, new) not in cache:
                cache.add((lin, new))
                stack.append((e, state, only))
                state, linearized = new, lin
                # lift the op's call and return entries out of the list
                nxt[prv[e]] = nxt[e]
                if nxt[e] != _NIL:
                    prv[nxt[e]] = prv[e]
                r = match[e]
                if r != _NIL:
                    nxt[prv[r]] = nxt[r]
                    if nxt[r] != _NIL:
                        prv[nxt[r]] = prv[r]
                    remaining -= 1
                e = nxt[0]
                continue
            if not only:
                e = nxt[e]
                continue
            # else this node was already explored through that op, in vain: backtrack
        elif len(stack) > best_depth:
            # Dead end: this ok op must be linearized before any later op, and neither it nor
            # any op invoked before its return (listed ahead of it) fits. Remember the deepest.
            best_depth = len(stack)
            pending = []
            c = nxt[0]
            while c != e:
                pending.append(entry_op[c])
                c = nxt[c]
            best = ([entry_op[s] for s, _, _ in stack], state, pending)
        # Backtrack: undo the last op lifted and try the next one at its node, if any.
        while True:
            if not stack:
                return Result(False, key, _explain(key, kept, intern, best, t0))
            e, state, only = stack.pop()
            linearized &= ~(1 << entry_op[e])
            r = match[e]
            if r != _NIL:
                nxt[prv[r]] = r
                if nxt[r] != _NIL:
                    prv[nxt[r]] = r
                remaining += 1
            nxt[prv[e]] = e
            if nxt[e] != _NIL:
                prv[nxt[e]] = e
            if not only:
                break
        e = nxt[e]
    return Result(ok=True, key=None)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(op: Operation, t0: float) -> str:
    proc = f"p{op.process}" if isinstance(op.process, int) else op.process
    what = f"#{op.id} {proc} {op.f}"
    if op.f in ("create", "write"):
        what += f" {_short(op.value)}"
    elif op.f == "read":
        what += f" -> {_short(op.result)}"
    ret = f"+{op.ret - t0:.3f}s" if op.status == "ok" and op.ret is not None else "?"
    tag = "" if op.status == "ok" else f" ({op.status})"
    return f"{what} [+{op.call - t0:.3f}s, {ret}]{tag}"


def _explain(key: str, kept: list[Operation], intern: _Interner,
             best: tuple[list[int], int, list[int]], t0: float, limit: int = 8) -> str:
    done, state, pending = best
    held = "nothing (absent)" if state == _ABSENT else _short(intern.values[state])
    head = f"key {key!r} is not linearizable: after linearizing {len(done)} of {len(kept)} ops"
    lines = [f"{head} the register held {held}"]
    if done:
        lines.append("  last linearized: " + _describe(kept[done[-1]], t0))
    lines.append("  none of these could be linearized next:")
    lines += ["    " + _describe(kept[i], t0) for i in pending[:limit]]
    if len(pending) > limit:
        lines.append(f"    ... and {len(pending) - limit} more")
    return "\n".join(lines)
