"""The linearizability checker: valid and invalid register histories, unknown ops, the bound."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from dataclasses import dataclass

import pytest

from shoal.dev.linearizability import History, Operation, SearchLimitExceeded, check


class Clock:
    """A settable clock, so that every history here is deterministic."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Records ops with explicit invocation and return times (in any order)."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.history = History(clock=self.clock)

    def op(self, process: int | str, f: str, key: str, value: object | None, call: float,
           ret: float | None, status: str = "ok", result: object | None = None) -> int:
        self.clock.now = call
        op_id = self.history.invoke(process, f, key, value)
        if status == "pending":
            return op_id
        if ret is not None:
            self.clock.now = ret
        if status == "ok":
            self.history.ok(op_id, result)
        elif status == "fail":
            self.history.fail(op_id)
        else:
            self.history.unknown(op_id)
        return op_id

    def read(self, process: int | str, key: str, result: object | None, call: float,
             ret: float) -> int:
        return self.op(process, "read", key, None, call, ret, result=result)


def test_empty_history_is_linearizable() -> None:
    assert check(History()).ok


def test_sequential_valid_history() -> None:
    r = Recorder()
    r.read(1, "s", None, 0, 1)
    r.op(1, "create", "s", "a", 2, 3)
    r.read(2, "s", "a", 4, 5)
    r.op(2, "write", "s", "b", 6, 7)
    r.read(1, "s", "b", 8, 9)
    r.op(1, "delete", "s", None, 10, 11)
    r.read(2, "s", None, 12, 13)
    r.op(2, "create", "s", "c", 14, 15)
    r.read(1, "s", "c", 16, 17)
    result = check(r.history)
    assert result.ok and result.key is None and result.explanation == ""


@pytest.mark.parametrize(("during", "after"), [("x", "x"), ("x", "y"), ("y", "x"), ("y", "y"),
                                               ("a", "x"), ("a", "y")])
def test_overlapping_writes_reads_see_either(during: str, after: str) -> None:
    r = Recorder()
    r.op(0, "create", "s", "a", 0, 1)
    r.op(1, "write", "s", "x", 2, 10)
    r.op(2, "write", "s", "y", 3, 11)
    r.read(3, "s", during, 4, 5)
    r.read(3, "s", after, 12, 13)
    assert check(r.history).ok


def test_overlapping_writes_cannot_flip_back() -> None:
    r = Recorder()
    r.op(0, "create", "s", "a", 0, 1)
    r.op(1, "write", "s", "x", 2, 10)
    r.op(2, "write", "s", "y", 3, 11)
    r.read(3, "s", "y", 4, 5)
    r.read(3, "s", "x", 6, 7)
    r.read(4, "s", "y", 12, 13)  # would need y, x, y: each write takes effect once
    assert not check(r.history).ok


def test_stale_read_after_completed_write() -> None:
    r = Recorder()
    r.op(1, "create", "s", "a", 0, 1)
    r.op(1, "write", "s", "b", 2, 3)
    stale = r.read(2, "s", "a", 4, 5)
    result = check(r.history)
    assert not result.ok and result.key == "s"
    assert f"#{stale} p2 read -> 'a' [+4.000s, +5.000s]" in result.explanation
    assert "held 'b'" in result.explanation


def test_read_concurrent_with_write_may_be_stale() -> None:
    r = Recorder()
    r.op(1, "create", "s", "a", 0, 1)
    r.op(1, "write", "s", "b", 2, 5)
    r.read(2, "s", "a", 4, 6)
    assert check(r.history).ok


def test_read_of_a_value_never_written() -> None:
    r = Recorder()
    r.op(1, "create", "s", "a", 0, 1)
    r.read(2, "s", "zzz", 2, 3)
    result = check(r.history)
    assert not result.ok and "read -> 'zzz'" in result.explanation


@pytest.mark.parametrize("status", ["unknown", "pending"])
@pytest.mark.parametrize("seen", ["a", "b"])
def test_unknown_write_may_or_may_not_take_effect(status: str, seen: str) -> None:
    r = Recorder()
    r.op(1, "create", "s", "a", 0, 1)
    r.op(2, "write", "s", "b", 2, None, status=status)
    r.read(3, "s", seen, 5, 6)
    r.read(3, "s", seen, 7, 8)
    assert check(r.history).ok


def test_unknown_write_takes_effect_at_most_once() -> None:
    r = Recorder()
    r.op(1, "create", "s", "a", 0, 1)
    r.op(2, "write", "s", "b", 2, None, status="unknown")
    r.read(3, "s", "b", 5, 6)
    r.read(3, "s", "a", 7, 8)
    result = check(r.history)
    assert not result.ok and "held 'b'" in result.explanation
    assert "p3 read -> 'a' [+7.000s, +8.000s]" in result.explanation


def test_unknown_write_cannot_take_effect_before_its_invocation() -> None:
    r = Recorder()
    r.op(1, "create", "s", "a", 0, 1)
    r.read(3, "s", "b", 2, 3)
    r.op(2, "write", "s", "b", 4, None, status="unknown")
    assert not check(r.history).ok


def test_unknown_create_and_delete() -> None:
    r = Recorder()
    r.op(1, "create", "s", "a", 0, None, status="unknown")
    r.read(2, "s", None, 1, 2)
    r.read(2, "s", "a", 3, 4)
    r.op(1, "delete", "s", None, 5, None, status="unknown")
    r.read(2, "s", "a", 6, 7)
    r.read(2, "s", None, 8, 9)
    assert check(r.history).ok


def test_failed_ops_have_no_effect() -> None:
    r = Recorder()
    r.op(1, "create", "s", "a", 0, 1)
    r.op(2, "create", "s", "other", 2, 3, status="fail")
    r.op(2, "write", "s", "b", 4, 5, status="fail")
    r.op(2, "read", "s", None, 4, 5, status="fail")
    r.read(3, "s", "a", 6, 7)
    assert check(r.history).ok
    r.read(3, "s", "b", 8, 9)
    assert not check(r.history).ok


def test_lost_acknowledged_create() -> None:
    r = Recorder()
    r.op(1, "create", "svc", {"Name": "web", "Replicas": 1}, 0, 1)
    r.read(2, "svc", None, 2, 3)
    result = check(r.history)
    assert not result.ok and result.key == "svc"
    assert "read -> None" in result.explanation


def test_duplicate_create_both_ok() -> None:
    r = Recorder()
    r.op(1, "create", "s", "a", 0, 2)
    r.op(2, "create", "s", "b", 1, 3)
    result = check(r.history)
    assert not result.ok and result.key == "s"


def test_duplicate_create_one_fails() -> None:
    r = Recorder()
    r.op(1, "create", "s", "a", 0, 2)
    r.op(2, "create", "s", "b", 1, 3, status="fail")
    r.read(1, "s", "a", 4, 5)
    assert check(r.history).ok


def test_write_and_delete_need_the_key() -> None:
    r = Recorder()
    r.op(1, "write", "s", "a", 0, 1)
    assert not check(r.history).ok
    r = Recorder()
    r.op(1, "delete", "s", None, 0, 1)
    assert not check(r.history).ok


def test_unhashable_values_compare_by_equality() -> None:
    r = Recorder()
    r.op(1, "create", "s", {"Replicas": 1, "Labels": ["a"]}, 0, 1)
    r.op(1, "write", "s", {"Replicas": 2, "Labels": ["a"]}, 2, 3)
    r.read(2, "s", {"Labels": ["a"], "Replicas": 2}, 4, 5)
    assert check(r.history).ok
    r.read(2, "s", {"Labels": ["a"], "Replicas": 1}, 6, 7)
    assert not check(r.history).ok


def test_keys_are_independent() -> None:
    r = Recorder()
    r.op(1, "create", "a", "a1", 0, 1)
    r.op(2, "create", "b", "b1", 0, 1)
    r.read(1, "a", "a1", 2, 3)
    r.read(2, "b", "b1", 2, 3)
    r.op(1, "delete", "a", None, 4, 5)
    r.read(2, "a", None, 6, 7)
    r.read(1, "b", "b1", 6, 7)
    assert check(r.history).ok
    r.read(3, "b", "a1", 8, 9)  # a's value on key b
    result = check(r.history)
    assert not result.ok and result.key == "b"


def test_history_api_errors() -> None:
    h = History()
    with pytest.raises(ValueError, match="unknown operation"):
        h.invoke(1, "update", "s", "a")
    with pytest.raises(ValueError, match="needs a value"):
        h.invoke(1, "write", "s")
    op_id = h.invoke(1, "create", "s", "a")
    h.ok(op_id)
    with pytest.raises(ValueError, match="already completed"):
        h.fail(op_id)
    with pytest.raises(ValueError, match="no operation"):
        h.ok(op_id + 1)
    assert len(h) == 1 and h.ops()[0].status == "ok"


async def test_records_from_asyncio_tasks_and_threads() -> None:
    history = History()  # the real monotonic clock
    store: dict[str, object] = {}
    lock = threading.Lock()

    def apply(f: str, key: str, value: object | None) -> tuple[bool, object | None]:
        with lock:
            if f == "read":
                return True, store.get(key)
            if (f == "create") == (key in store):
                return False, None
            if f == "delete":
                del store[key]
            else:
                store[key] = value
            return True, None

    def client(process: int | str, rng: random.Random, steps: int) -> None:
        for n in range(steps):
            f = rng.choice(["create", "write", "read", "read", "delete"])
            key = rng.choice(["s1", "s2"])
            value = f"{process}-{n}" if f in ("create", "write") else None
            op_id = history.invoke(process, f, key, value)
            ok, seen = apply(f, key, value)
            if ok:
                history.ok(op_id, seen)
            else:
                history.fail(op_id)

    async def async_client(process: int) -> None:
        rng = random.Random(process)
        for _ in range(20):
            client(process, rng, 1)
            await asyncio.sleep(0)

    threads = [threading.Thread(target=client, args=(f"t{i}", random.Random(i), 50))
               for i in range(3)]
    for t in threads:
        t.start()
    await asyncio.gather(*(async_client(p) for p in range(3)))
    for t in threads:
        t.join()
    assert len(history) == 3 * 50 + 3 * 20
    assert check(history).ok


def _brute_force(ops: list[Operation]) -> bool:
    """Linearizable by trying every order of the ok ops plus any subset of the unknown ones."""
    ops = [o for o in ops if o.status != "fail" and (o.f != "read" or o.status == "ok")]
    must = [o for o in ops if o.status == "ok"]
    optional = [o for o in ops if o.status != "ok"]

    def ret(o: Operation) -> float:
        return o.ret if o.status == "ok" and o.ret is not None else float("inf")

    def legal(order: tuple[Operation, ...]) -> bool:
        if any(ret(b) < a.call for a, b in itertools.combinations(order, 2)):
            return False
        state: object | None = None
        for o in order:
            if o.f == "read":
                if o.result != state:
                    return False
            elif (o.f == "create") != (state is None):
                return False
            else:
                state = None if o.f == "delete" else o.value
        return True

    return any(legal(order)
               for k in range(len(optional) + 1)
               for extra in itertools.combinations(optional, k)
               for order in itertools.permutations(must + list(extra)))


def test_agrees_with_brute_force_on_small_histories() -> None:
    rng = random.Random(5)
    verdicts = set()
    for _ in range(400):
        r = Recorder()
        for i in range(rng.randint(1, 6)):
            f = rng.choice(["create", "write", "read", "delete"])
            call = rng.randint(0, 8)
            status = rng.choices(["ok", "fail", "unknown", "pending"], weights=[5, 1, 2, 1])[0]
            r.op(i % 3, f, "k", rng.choice(["a", "b"]) if f in ("create", "write") else None,
                 call, call + rng.randint(0, 4) if status in ("ok", "fail") else None,
                 status=status, result=rng.choice([None, "a", "b"]) if f == "read" else None)
        expected = _brute_force(r.history.ops())
        assert check(r.history).ok == expected, r.history.ops()
        verdicts.add(expected)
    assert verdicts == {True, False}


@dataclass
class _Planned:
    process: int
    f: str
    key: str
    value: str | None
    call: float
    ret: float
    point: float  # when it really takes effect
    unknown: bool


def _simulate(seed: int, keys: int, ops_per_key: int, processes: int) -> Recorder:
    """A linearizable history: each op takes effect at a random point within its interval."""
    rng = random.Random(seed)
    planned: list[_Planned] = []
    clocks = [rng.uniform(0, 1) for _ in range(processes)]
    for n in range(keys * ops_per_key):
        p = n % processes
        call = clocks[p]
        ret = call + rng.uniform(0.1, 3.0)
        clocks[p] = ret + rng.uniform(0.0, 0.5)
        f = rng.choices(["create", "write", "read", "delete"], weights=[2, 4, 6, 1])[0]
        value = f"v{n}" if f in ("create", "write") else None
        planned.append(_Planned(p, f, f"svc-{rng.randrange(keys)}", value, call, ret,
                                rng.uniform(call, ret), rng.random() < 0.02))
    store: dict[str, str] = {}
    r = Recorder()
    for op in sorted(planned, key=lambda o: o.point):
        present = op.key in store
        if op.f == "read":
            r.read(op.process, op.key, store.get(op.key), op.call, op.ret)
            continue
        if op.f == "create":
            applies = not present
        else:
            applies = present
        if op.unknown:
            r.op(op.process, op.f, op.key, op.value, op.call, None, status="unknown")
            applies = applies and rng.random() < 0.5
        else:
            r.op(op.process, op.f, op.key, op.value, op.call, op.ret,
                 status="ok" if applies else "fail")
        if applies:
            if op.f == "delete":
                del store[op.key]
            else:
                assert op.value is not None
                store[op.key] = op.value
    return r


def test_performance_concurrent_history() -> None:
    r = _simulate(seed=7, keys=3, ops_per_key=300, processes=5)
    assert len(r.history) == 900
    assert check(r.history).ok


def test_performance_detects_a_late_bad_read() -> None:
    r = _simulate(seed=11, keys=3, ops_per_key=300, processes=5)
    last = max(op.ret or op.call for op in r.history.ops())
    r.read(9, "svc-1", "never-written", last + 1, last + 2)
    result = check(r.history)
    assert not result.ok and result.key == "svc-1"
    assert "never-written" in result.explanation


def test_search_is_bounded() -> None:
    r = _simulate(seed=3, keys=1, ops_per_key=300, processes=5)
    with pytest.raises(SearchLimitExceeded, match="gave up after 50 steps"):
        check(r.history, max_steps=50)
