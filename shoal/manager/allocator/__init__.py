"""The allocator: NEW tasks get their network resources and move to PENDING for the scheduler.

``Allocator(store).run()`` is its one long-lived loop; ``NetworkAllocator`` (network.py) holds
the subnets, VXLAN IDs, VIPs and addresses handed out (``ipam.py``) and is the first ``Voter``
(the shape of one allocation step). See docs/design/networking.md.
"""

from shoal.manager.allocator.allocator import PENDING_MESSAGE, Allocator, AllocatorSettings
from shoal.manager.allocator.network import NetworkAllocator
from shoal.manager.allocator.voters import Voter

__all__ = ["PENDING_MESSAGE", "Allocator", "AllocatorSettings", "NetworkAllocator", "Voter"]
