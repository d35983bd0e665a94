"""This node's named volumes: the ``local`` driver (``local.py``) and the service the API and
the executor use (``service.py``). Per node, never in the swarm's store, as dockerd's."""

from __future__ import annotations

from shoal.volume.service import PruneReport, Users, VolumeService

__all__ = ["PruneReport", "Users", "VolumeService"]
