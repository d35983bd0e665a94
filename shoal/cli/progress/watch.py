"""Wait for a service to converge, as ``docker service create/update/scale`` do without ``-d``.

Every 200 ms: read the service, its up-to-date tasks and the nodes; count (see
`shoal.cli.progress.counters` and `shoal.cli.progress.jobs`); once converged, keep watching for the update monitor period
(5 s unless the service says otherwise) and print ``verify: Service X converged``.
"""

from __future__ import annotations

from typing import Any

from shoal.cli.app import App
from shoal.cli.client import filters_param
from shoal.cli.command import BIN
from shoal.cli.errors import CliError, Interrupted
from shoal.cli.progress.counters import GlobalUpdater, ReplicatedUpdater
from shoal.cli.progress.jobs import GlobalJobUpdater, ReplicatedJobUpdater
from shoal.cli.progress.render import Progress, ProgressDisplay
from shoal.cli.progress.states import Output, Updater

__all__ = ["POLL_INTERVAL", "display_for", "new_updater", "service_progress", "wait_on_service"]

POLL_INTERVAL = 0.2  # seconds between polls, as docker
_DEFAULT_MONITOR = 5_000_000_000  # ns; swarmkit's default UpdateConfig.Monitor
_SECOND = 1_000_000_000


def display_for(app: App, *, quiet: bool = False) -> ProgressDisplay:
    """The progress display on the app's output (nothing shown when `quiet`)."""
    return ProgressDisplay(app.out if not quiet else (lambda _text: None), tty=app.is_tty,
                           width=app.width)


def wait_on_service(app: App, service_id: str, *, quiet: bool = False) -> None:
    """Show convergence progress for `service_id` (or only wait, when `quiet`)."""
    service_progress(app, service_id, display_for(app, quiet=quiet))


def _active_nodes(app: App) -> set[str]:
    return {
        str(node.get("ID", ""))
        for node in app.client.get("/nodes") or []
        if (node.get("Status") or {}).get("State") != "down"
    }


def new_updater(service: dict[str, Any], out: Output) -> Updater:
    """docker's ``initializeUpdater``: pick the counter for the service's mode."""
    mode = (service.get("Spec") or {}).get("Mode") or {}
    if mode.get("Replicated") is not None and mode["Replicated"].get("Replicas") is not None:
        return ReplicatedUpdater(out)
    if mode.get("Global") is not None:
        return GlobalUpdater(out)
    if mode.get("ReplicatedJob") is not None:
        return ReplicatedJobUpdater(service, out)
    if mode.get("GlobalJob") is not None:
        return GlobalJobUpdater(out)
    raise CliError("unrecognized service mode")


class _Watch:
    """The state of one convergence wait (docker's ``ServiceProgress`` locals)."""

    def __init__(self, app: App, service_id: str, out: Output) -> None:
        self.app, self.service_id, self.out = app, service_id, out
        self.updater: Updater | None = None
        self.converged = False
        self.converged_at: int | None = None
        self.monitor = _DEFAULT_MONITOR
        self.rollback = False
        self.message: Progress | None = None

    def now(self) -> int:
        return int(self.app.clock() * _SECOND)

    def poll(self) -> bool:
        """One iteration; True when the wait is over."""
        service: dict[str, Any] = self.app.client.get(
            f"/services/{self.service_id}", {"insertDefaults": "false"}
        )
        monitor = ((service.get("Spec") or {}).get("UpdateConfig") or {}).get("Monitor")
        if monitor:
            self.monitor = int(monitor)
        if self.updater is None:
            self.updater = new_updater(service, self.out)
        if self._update_status(service):
            return True
        if (
            self.converged
            and self.converged_at is not None
            and self.now() - self.converged_at >= self.monitor
        ):
            self.out(Progress(id="verify", action=f"Service {self.service_id} converged"))
            if self.message is not None:
                self.out(self.message)
            return True
        filters = {"_up-to-date": ["true"], "service": [str(service.get("ID", self.service_id))]}
        tasks = self.app.client.get("/tasks", {"filters": filters_param(filters)}) or []
        self.converged = self.updater.update(service, tasks, _active_nodes(self.app), self.rollback)
        if self.converged:
            if service.get("JobStatus") is not None:
                self.out(Progress(message="job complete"))
                return True
            if self.converged_at is None:
                self.converged_at = self.now()
            wait = self.monitor - (self.now() - self.converged_at)
            if wait >= 0:
                self.out(
                    Progress(
                        id="verify",
                        action=f"Waiting {wait // _SECOND + 1} seconds to verify that tasks are stable...",
                    )
                )
        else:
            if self.converged_at is not None:
                self.out(Progress(id="verify", action="Detected task failure"))
            self.converged_at = None
        return False

    def _update_status(self, service: dict[str, Any]) -> bool:
        status = service.get("UpdateStatus") or {}
        state, message = status.get("State", ""), status.get("Message", "")
        if state == "updating":
            self.rollback = False
        elif state == "completed":
            return not self.converged
        elif state == "paused":
            raise CliError(f"service update paused: {message}")
        elif state == "rollback_started":
            if not self.rollback and message:
                self.out(Progress(id="rollback", action=message))
            self.rollback = True
        elif state == "rollback_paused":
            raise CliError(f"service rollback paused: {message}")
        elif state == "rollback_completed":
            if not self.converged:
                self.message = Progress(id="rollback", message=message)
            self.rollback = True
        return False


def service_progress(app: App, service_id: str, out: Output) -> None:
    """docker's ``ServiceProgress`` loop; Ctrl-C leaves the update running in the background."""
    watch = _Watch(app, service_id, out)
    try:
        while not watch.poll():
            app.sleep(POLL_INTERVAL)
    except KeyboardInterrupt:
        if not watch.converged:
            out(Progress(message="Operation continuing in background."))
            out(Progress(message=f"Use `{BIN} service ps {service_id}` to check progress."))
        raise Interrupted() from None
