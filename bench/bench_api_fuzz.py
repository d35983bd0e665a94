#!/usr/bin/env python3
"""The Engine API fuzzed from moby's swagger (v1.50) for longer than the CI tier: schemathesis
cases over every operation Shoal serves, against one shoald (a single-node swarm, sim executor)
on 127.0.96.1; prints the requests, the status codes, the failures (5xx, no answer, a response
off Docker's schema) and the time, then whether the docker CLI still reads what was stored.

    PYTHONPATH=. .venv/bin/python bench/bench_api_fuzz.py [SECONDS]    # default 900

The same driver as tests/integration/test_api_fuzz.py (tests/fuzz/apifuzz.py). Exits 1 on any
failure.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.dev.local import Swarm  # noqa: E402
from tests.fuzz.apifuzz import run, seed  # noqa: E402

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 900.0
PORT = 23751


def main(swarm: Swarm) -> int:
    manager = swarm.add(start=False)
    manager.api_hosts = [f"tcp://{manager.ip}:{PORT}"]
    manager.start()
    manager.docker("swarm", "init", "--advertise-addr", manager.ip)
    base_url = f"http://{manager.ip}:{PORT}/v1.50"
    report = run(base_url, budget=SECONDS, seed_ids=seed(base_url))
    print(report.summary())
    for line in report.failures:
        print("FAIL", line)
    broken = []
    if not manager.ping():
        broken.append("shoald no longer answers /_ping")
    for argv in (["info"], ["service", "ls"], ["node", "ls"], ["secret", "ls"], ["config", "ls"],
                 ["network", "ls"], ["volume", "ls"]):
        result = manager.docker(*argv, check=False, timeout=30)
        if result.returncode != 0:
            broken.append(f"docker {' '.join(argv)}: {result.stderr.strip()}")
    for line in broken:
        print("BROKEN", line)
    print(f"{report.requests} requests, {len(report.failures)} failures, {len(broken)} broken reads, "
          f"{report.seconds:.0f} s ({report.requests / max(report.seconds, 1e-9):.0f} requests/s)")
    return 1 if report.failures or broken else 0


if __name__ == "__main__":
    tmp = Path(tempfile.mkdtemp(prefix="shoalbench-fuzz-"))
    s = Swarm(tmp, base_ip="127.0.96", prefix="shoalbench-fuzz")
    try:
        code = main(s)
    finally:
        s.close()
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(code)
