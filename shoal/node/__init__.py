"""The node's side of its identity: joining a swarm for a certificate (``join``), renewing it
(``renew``), and when to renew (``Renewer``, ``renewal``)."""

from shoal.node.join import join, renew
from shoal.node.renewal import Renewer

__all__ = ["Renewer", "join", "renew"]
