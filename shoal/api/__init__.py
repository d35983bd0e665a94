"""The Docker Engine API (swarm subset) served by shoald."""

from __future__ import annotations

from aiohttp import web

from shoal.api import (
    routes_containers,
    routes_df,
    routes_events,
    routes_exec,
    routes_images,
    routes_logs,
    routes_networks,
    routes_nodes,
    routes_run,
    routes_secrets,
    routes_services,
    routes_swarm,
    routes_system,
    routes_volumes,
)
from shoal.api.engine import Engine, SwarmState
from shoal.api.server import APITLS, Router, make_app, serve

__all__ = ["APITLS", "Engine", "SwarmState", "build_app", "serve"]


def build_app(engine: Engine) -> web.Application:
    router = Router()
    for module in (routes_system, routes_swarm, routes_nodes, routes_services, routes_networks,
                   routes_secrets, routes_logs, routes_images, routes_volumes, routes_df,
                   routes_containers, routes_exec, routes_run, routes_events):
        module.register(router)
    app = make_app(engine, router)
    routes_events.install(app)  # its live streams end when the app shuts down
    return app
