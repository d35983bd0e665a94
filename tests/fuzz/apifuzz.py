"""The Engine API fuzzed from Docker's own definition: schemathesis cases from moby's swagger
(v1.50, vendored beside this file), sent to one shoald, each answer checked.

Used by ``tests/fuzz/test_api_fuzz.py`` (a bounded budget, in CI) and
``bench/bench_api_fuzz.py`` (a longer run). ``run`` goes over the operations Shoal serves,
once with generated path parameters and once with the IDs of real objects (made by ``seed``),
positive cases (valid per Docker's schema) then negative ones, until each operation's share
of the budget is spent. Failures are recorded, never raised mid-run:

- any 5xx (Docker would answer a 4xx, or 2xx);
- no answer within the request's timeout (a hang), or the connection refused;
- a response that does not match the schema where Shoal claims the endpoint: its
  Content-Type, and its body for a 2xx (schemathesis' content_type_conformance and
  response_schema_conformance).
"""

from __future__ import annotations

import random
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

SWAGGER = Path(__file__).with_name("engine-api-v1.50.yaml")

# (method, swagger path) Shoal serves and the fuzzer may call. Left out: /swarm/leave (the run
# would end the swarm it fuzzes), /images/create and /distribution (they reach out to
# registries on the internet).
OPERATIONS = [
    ("GET", "/_ping"), ("HEAD", "/_ping"), ("GET", "/version"), ("GET", "/info"), ("GET", "/system/df"),
    ("POST", "/swarm/init"), ("POST", "/swarm/join"), ("GET", "/swarm"), ("POST", "/swarm/update"),
    ("GET", "/swarm/unlockkey"), ("POST", "/swarm/unlock"),
    ("GET", "/nodes"), ("GET", "/nodes/{id}"), ("POST", "/nodes/{id}/update"), ("DELETE", "/nodes/{id}"),
    ("GET", "/services"), ("POST", "/services/create"), ("GET", "/services/{id}"),
    ("POST", "/services/{id}/update"), ("DELETE", "/services/{id}"), ("GET", "/services/{id}/logs"),
    ("GET", "/tasks"), ("GET", "/tasks/{id}"), ("GET", "/tasks/{id}/logs"),
    ("GET", "/secrets"), ("POST", "/secrets/create"), ("GET", "/secrets/{id}"),
    ("POST", "/secrets/{id}/update"), ("DELETE", "/secrets/{id}"),
    ("GET", "/configs"), ("POST", "/configs/create"), ("GET", "/configs/{id}"),
    ("POST", "/configs/{id}/update"), ("DELETE", "/configs/{id}"),
    ("GET", "/networks"), ("GET", "/networks/{id}"), ("POST", "/networks/create"), ("DELETE", "/networks/{id}"),
    ("GET", "/volumes"), ("GET", "/volumes/{name}"), ("POST", "/volumes/create"), ("DELETE", "/volumes/{name}"),
    ("POST", "/volumes/prune"),
    ("GET", "/images/json"), ("GET", "/images/{name}/json"), ("POST", "/images/{name}/tag"),
    ("DELETE", "/images/{name}"),
]
REQUEST_TIMEOUT = 20.0


@dataclass
class Report:
    requests: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def fail(self, what: str) -> None:
        if len(self.failures) < 200:  # the first ones say enough
            self.failures.append(what)

    def summary(self) -> str:
        codes = " ".join(f"{k}:{v}" for k, v in sorted(self.statuses.items()))
        return (f"{self.requests} requests in {self.seconds:.0f} s ({codes}), {len(self.failures)} failures"
                + (f", skipped {dict(self.skipped)}" if self.skipped else ""))


def _too_many_tasks(body: Any) -> bool:
    """A service asking for more tasks than one node can make in a test's time (up to the
    control API's limit of 10,000, tested on its own in test_robustness): not sent, so the
    run's cost stays bounded."""
    if not isinstance(body, dict):
        return False
    mode = next((v for k, v in body.items() if str(k).lower() == "mode"), None)
    if not isinstance(mode, dict):
        return False
    for kind in mode.values():
        if isinstance(kind, dict):
            for k, v in kind.items():
                if str(k).lower() in ("replicas", "maxconcurrent", "totalcompletions") and isinstance(v, int) \
                        and not isinstance(v, bool) and v > 50:
                    return True
    return False


def seed(base_url: str) -> dict[str, str]:
    """Real objects for the path parameters: a service, a secret, a config, a network, a
    volume; and the node. Their IDs by swagger parameter group."""
    s = requests.Session()
    try:
        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            r = s.post(base_url + path, json=body, timeout=REQUEST_TIMEOUT)
            r.raise_for_status()
            out: dict[str, Any] = r.json()
            return out

        svc = post("/services/create", {"Name": "fuzz-seed", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}}})
        secret = post("/secrets/create", {"Name": "fuzz-seed", "Data": "YWJj"})
        config = post("/configs/create", {"Name": "fuzz-seed", "Data": "YWJj"})
        net = post("/networks/create", {"Name": "fuzz-seed", "Driver": "overlay"})
        post("/volumes/create", {"Name": "fuzz-seed"})
        node = s.get(base_url + "/nodes", timeout=REQUEST_TIMEOUT).json()[0]["ID"]
        tasks = s.get(base_url + "/tasks", timeout=REQUEST_TIMEOUT).json()
    finally:
        s.close()
    ids = {"/services": svc["ID"], "/secrets": secret["ID"], "/configs": config["ID"], "/networks": net["Id"],
           "/volumes": "fuzz-seed", "/nodes": node, "/images": "busybox"}
    if tasks:
        ids["/tasks"] = tasks[0]["ID"]
    return ids


def run(base_url: str, *, budget: float, seed_ids: dict[str, str] | None = None,
        operations: list[tuple[str, str]] | None = None, live_versions: bool = True) -> Report:
    """Fuzz ``base_url`` (``http://IP:PORT/v1.50``) for about ``budget`` seconds.

    ``live_versions``: an update of a seeded object (or of the swarm) is sent with the object's
    current ``version`` half of the time, so generated specs get past "update out of sequence"
    and are stored, and the reads after the run see them."""
    import hypothesis
    import schemathesis
    from hypothesis import HealthCheck, Phase, strategies
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
    )

    schema = schemathesis.openapi.from_path(str(SWAGGER))
    schema.config.update(base_url=base_url)
    wanted = set(operations or OPERATIONS)
    ops = []
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in wanted:
            ops.append(op)
    report = Report()
    session = requests.Session()
    start = time.monotonic()
    end = start + budget
    rounds = [(mode, fixed) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
              for fixed in (False, True)]
    share = budget / (len(ops) * len(rounds))

    class _Spent(Exception):
        pass

    def one(case: Any, until: float) -> None:
        now = time.monotonic()
        if now > until or now > end:
            raise _Spent
        if _too_many_tasks(case.body):
            report.skipped["replicas > 50"] += 1
            return
        name = f"{case.method} {case.formatted_path}"
        report.requests += 1
        if live_versions and case.query and "version" in case.query and random.random() < 0.5:
            current = _current_version(session, base_url, case)
            if current is not None:
                case.query["version"] = current
        if case.query and "follow" in case.query:
            case.query["follow"] = False  # a followed stream never ends; test_logs follows
        try:
            response = case.call(session=session, timeout=REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            report.fail(f"{name}: no answer: {type(exc).__name__}: {exc}; query={case.query} body={_short(case.body)}")
            return
        report.statuses[response.status_code] += 1
        if response.status_code >= 500 and not _dockers_own(response):
            report.fail(f"{name}: {response.status_code} {response.text[:300]}; query={case.query} body={_short(case.body)}")
            return
        if response.status_code >= 400:
            # dockerd's errors: {"message": ...} in application/json, also where the swagger
            # lists only a stream's type (logs); checked here, not against the schema.
            if not _docker_error(response):
                report.fail(f"{name} -> {response.status_code}: not Docker's error format: "
                            f"{_header(response, 'Content-Type')} {response.text[:200]!r}")
            return
        if (case.method, case.path) in _ID_NOT_ID and response.status_code == 201:
            if not isinstance(response.json().get("ID"), str):
                report.fail(f"{name} -> 201 without its ID: {response.text[:200]!r}")
            return
        try:
            case.validate_response(response, checks=[response_schema_conformance, content_type_conformance])
        except AssertionError as exc:  # a schemathesis Failure or FailureGroup
            report.fail(f"{name} -> {response.status_code}: {_first_line(exc)}")
        except BaseExceptionGroup as group:
            report.fail(f"{name} -> {response.status_code}: {_first_line(group.exceptions[0])}")

    def fuzzer(strategy: Any, until: float) -> Any:
        @hypothesis.settings(max_examples=10_000, deadline=None, database=None, phases=[Phase.generate],
                             suppress_health_check=list(HealthCheck), print_blob=False,
                             verbosity=hypothesis.Verbosity.quiet)
        @hypothesis.given(strategies.data())
        def fuzz(data: strategies.DataObject) -> None:
            one(data.draw(strategy), until)
        return fuzz

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # schemathesis' notes about the schema
        for mode, fixed in rounds:
            for op in ops:
                group = next((v for k, v in (seed_ids or {}).items() if op.path.startswith(k + "/")), None)
                if fixed and group is None:
                    continue
                params = {name: group for name in ("id", "name") if "{" + name + "}" in op.path} if fixed else None
                strategy = op.as_strategy(generation_mode=mode, path_parameters=params)
                try:
                    fuzzer(strategy, time.monotonic() + share)()
                except (_Spent, hypothesis.errors.Unsatisfiable):
                    pass
    session.close()
    report.seconds = time.monotonic() - start
    return report


# Where the swagger and dockerd differ, dockerd wins (the clients are written against it): a
# secret's and a config's create answer {"ID": ...} (ConfigCreateResponse, docker-py reads
# "ID"), where the swagger has IdResponse's "Id".
_ID_NOT_ID = {("POST", "/secrets/create"), ("POST", "/configs/create")}

# dockerd's own 5xx answers, with its words (engine-api.md 1.6): not Shoal's failures.
_DOCKERS_5XX = ("update out of sequence", "This node is already part of a swarm")


def _dockers_own(response: Any) -> bool:
    return any(words in response.text for words in _DOCKERS_5XX)


def _current_version(session: requests.Session, base_url: str, case: Any) -> int | None:
    """The Version.Index of the object an update names (the swarm's for /swarm/update)."""
    path = case.formatted_path.removesuffix("/update")
    try:
        r = session.get(base_url + path, timeout=REQUEST_TIMEOUT)
        return int(r.json()["Version"]["Index"]) if r.status_code == 200 else None
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None


def _header(response: Any, name: str) -> str | None:
    """A header of a schemathesis Response (lower-case names, lists of values)."""
    for key, value in response.headers.items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) else value)
    return None


def _docker_error(response: Any) -> bool:
    if _header(response, "Content-Type") != "application/json":
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("message"), str)


def _short(body: Any) -> str:
    text = repr(body)
    return text if len(text) < 300 else text[:300] + "..."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " | ".join(text.splitlines()[:6])[:600]
