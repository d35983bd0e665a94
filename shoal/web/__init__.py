"""The web view: a manager's shoald started with ``--web-addr`` serves a live page of the swarm
(nodes and their tasks, services, a task's logs) from its store's watch. See docs/web.md."""

from __future__ import annotations

from shoal.web.server import build_web_app, parse_web_addr, serve_web
from shoal.web.source import WebSource

__all__ = ["WebSource", "build_web_app", "parse_web_addr", "serve_web"]
