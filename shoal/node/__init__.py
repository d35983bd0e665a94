"""The joining node: how it gets its identity by joining a swarm (``join``, ``renew``)."""

from shoal.node.join import join, renew

__all__ = ["join", "renew"]
