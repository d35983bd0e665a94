"""The node's side of overlay networking (the networking issue): each module says what it holds,
e.g. `dns.py`, the embedded DNS server at 127.0.0.11 in every container namespace. The agent
uses this package; it imports only errors, aio and model (pyproject.toml's [tool.importlinter])."""
