"""The web view in a real browser: a manager (``--web-addr``) and two workers with the sim
executor on loopback, and Debian's headless Chromium driven by Selenium (chromedriver at
/usr/bin/chromedriver, no browser download). The grid shows each node and the tasks on it;
when a worker's shoald is killed its tasks reappear on the other nodes in the same page,
without a reload; the services page shows the replicas, and an update and its rollback as
they progress; the nodes page the roles, the leader and the certificates' expiry; a task's
page its details and its log stream's answer; a worker's web view says it is a worker.
Screenshots are kept under $SHOAL_TEST_ARTIFACTS (else the test's tmp dir), their paths
printed."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-web"
BASE_IP = "127.0.106"
SERVICE = "shoaltest-web-svc"
REPLICAS = 6
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

selenium = pytest.importorskip("selenium.webdriver")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("needs Debian's chromium and chromium-driver (scripts/setup)", allow_module_level=True)

# What the page shows: per node card, its name and its tasks' (service, slot, state).
GRID_JS = """return [...document.querySelectorAll('section.node')].map(s =>
  [s.dataset.node, s.className, [...s.querySelectorAll('a.task')].map(a =>
    [a.dataset.service, Number(a.dataset.slot), a.dataset.state])])"""


def _free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def _artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SHOAL_TEST_ARTIFACTS") or tmp_path) / "web"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,800", f"--user-data-dir={tmp_path / 'chromium'}",
                "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    driver = selenium.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(20)
        yield driver
    finally:
        driver.quit()


def _start(swarm: Swarm, *, web: bool) -> Daemon:
    d = swarm.add(start=False)
    if web:
        d.web_addr = f"{d.ip}:{_free_port(d.ip)}"
    d.start()
    return d


def _swarm(swarm: Swarm) -> tuple[Daemon, list[Daemon]]:
    """A manager serving the web view and two workers (the first serving one too)."""
    manager = _start(swarm, web=True)
    manager.docker("swarm", "init", "--advertise-addr", manager.ip, "--dispatcher-heartbeat", "1s")
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    workers = []
    for i in range(2):
        w = _start(swarm, web=i == 0)
        w.docker("swarm", "join", "--token", token, "--advertise-addr", w.ip, f"{manager.ip}:2377")
        workers.append(w)
    wait_for("3 nodes ready", lambda: manager.docker("node", "ls", "--format", "{{.Status}}")
             .stdout.split().count("Ready") == 3, timeout=30)
    return manager, workers


def _api_placement(manager: Daemon) -> list[tuple[str, int]]:
    """(hostname, slot) of the service's running tasks, as the API says."""
    names = {n["ID"]: n["Description"]["Hostname"] for n in manager.api("/nodes")}
    tasks = manager.api(f'/tasks?filters={{"service":["{SERVICE}"],"desired-state":["running"]}}')
    return sorted((names.get(t["NodeID"], ""), t["Slot"]) for t in tasks if t["Status"]["State"] == "running")


def _page_placement(driver: Any) -> list[tuple[str, int]]:
    return sorted((node, slot) for node, _, tasks in driver.execute_script(GRID_JS)
                  for service, slot, state in tasks if service == SERVICE and state == "running")


def _service_row(driver: Any) -> str:
    found = driver.execute_script(f"const r = document.querySelector(\"tr[data-service='{SERVICE}']\"); "
                                  "return r ? r.textContent : ''")
    return str(found)


def _until(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    wait_for(what, check, timeout=timeout, interval=0.2)


def test_the_grid_moves_with_the_swarm(swarm: Swarm, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    artifacts = _artifacts(tmp_path)
    manager, (w1, w2) = _swarm(swarm)
    manager.docker("service", "create", "-d", "--name", SERVICE, "--replicas", str(REPLICAS),
                   "--publish", "18080:80", "busybox:latest")
    _until("6 tasks running", lambda: len(_api_placement(manager)) == REPLICAS, timeout=60)

    started = time.monotonic()
    browser.get(f"http://{manager.web_addr}/")
    _until("the grid drawn", lambda: len(_page_placement(browser)) == REPLICAS)
    print(f"first full render: {time.monotonic() - started:.3f} s (browser's own: "
          f"{browser.execute_script('return window.shoalFirstRender'):.0f} ms after navigation)")
    cards = {node: cls for node, cls, _ in browser.execute_script(GRID_JS)}
    assert set(cards) == {manager.hostname, w1.hostname, w2.hostname}
    assert _page_placement(browser) == _api_placement(manager)
    moved = [slot for node, slot in _page_placement(browser) if node == w2.hostname]
    assert moved, "the spread put no task on the second worker"
    browser.save_screenshot(str(artifacts / "grid-before.png"))

    browser.execute_script("window.shoalTestMark = 'same page'")  # gone if the page reloads
    w2.kill()  # SIGKILL: its tasks are rescheduled once its heartbeats stop
    _until("the dead worker's tasks on the other nodes, in the page",
           lambda: sorted(s for _, s in _page_placement(browser)) == list(range(1, REPLICAS + 1))
           and all(n != w2.hostname for n, _ in _page_placement(browser)), timeout=60)
    assert browser.execute_script("return window.shoalTestMark") == "same page"
    assert _page_placement(browser) == _api_placement(manager)
    assert "n-down" in {node: cls for node, cls, _ in browser.execute_script(GRID_JS)}[w2.hostname]
    shot = artifacts / "grid-after-kill.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")

    browser.find_element(By.CSS_SELECTOR, "nav a[data-view=services]").click()
    _until("the services page", lambda: bool(browser.find_elements(By.CSS_SELECTOR, f"tr[data-service='{SERVICE}']")))
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-service='{SERVICE}']")
    assert row.find_element(By.CSS_SELECTOR, "td.replicas").text == f"{REPLICAS}/{REPLICAS}"
    assert "18080→80/tcp" in row.text and "ingress" in row.text
    # An update and its rollback, followed on the same page: UpdateStatus and the tasks on the
    # current spec ("fresh"), the image column with them.
    manager.docker("service", "update", "-d", "--image", "busybox:1.36", SERVICE)
    _until("the update completed on the page", lambda: f"completed {REPLICAS}/{REPLICAS} updated"
           in _service_row(browser) and "busybox:1.36" in _service_row(browser), timeout=60)
    manager.docker("service", "rollback", "-d", SERVICE)
    _until("the rollback completed on the page", lambda: f"rollback_completed {REPLICAS}/{REPLICAS} updated"
           in _service_row(browser) and "busybox:latest" in _service_row(browser), timeout=60)
    browser.save_screenshot(str(artifacts / "services.png"))

    browser.find_element(By.CSS_SELECTOR, "nav a[data-view=nodes]").click()
    _until("the nodes page", lambda: len(browser.find_elements(By.CSS_SELECTOR, "tbody tr[data-node]")) == 3)
    rows = {r.get_attribute("data-node"): r.text for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr[data-node]")}
    assert "manager" in rows[manager.hostname] and "Leader" in rows[manager.hostname]
    assert "down" in rows[w2.hostname]
    for text in rows.values():
        assert "UTC (in " in text, text  # every node's certificate expiry, from the store
    browser.save_screenshot(str(artifacts / "nodes.png"))
    assert browser.execute_script("return window.shoalTestMark") == "same page"

    browser.find_element(By.CSS_SELECTOR, "nav a[data-view=grid]").click()
    _until("the grid again", lambda: len(_page_placement(browser)) == REPLICAS)
    browser.find_element(By.CSS_SELECTOR, f"a.task[data-service='{SERVICE}']").click()
    _until("the task's details", lambda: "busybox:latest" in browser.find_element(By.ID, "task-info").text)
    assert "running" in browser.find_element(By.ID, "task-state").text
    # The sim executor keeps no output: the log stream answers, and says so, rather than hang.
    _until("the task's log stream answered", lambda: "—" in browser.find_element(By.ID, "logs").text)
    browser.save_screenshot(str(artifacts / "task.png"))

    browser.get(f"http://{w1.web_addr}/")
    _until("the worker's message", lambda: "worker" in browser.find_element(By.ID, "banner").text)


def test_a_non_loopback_web_addr_without_tls_is_refused(tmp_path: Path) -> None:
    """One line, exit 1, before anything starts."""
    import subprocess

    from shoal.dev.local import SHOALD

    root = tmp_path / "refused"
    out = subprocess.run([*SHOALD, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
                          "-H", f"unix://{root}/api.sock", "--executor", "sim",
                          "--web-addr", "192.0.2.1:8080"], check=False, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        ("shoald: --web-addr 192.0.2.1:8080: refusing to serve the web view off loopback without "
         "TLS: use a loopback address, or --tls/--tlsverify with --tlscert and --tlskey")]
    shutil.rmtree(root, ignore_errors=True)
