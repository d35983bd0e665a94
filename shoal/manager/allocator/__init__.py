"""The allocator: NEW tasks get their network resources and move to PENDING for the scheduler.

``Allocator(store).run()`` is its one long-lived loop; ``Voter`` is the shape of one allocation
step (networks and ports come later). See docs/design/allocator.md.
"""

from shoal.manager.allocator.allocator import PENDING_MESSAGE, Allocator, AllocatorSettings
from shoal.manager.allocator.voters import Voter

__all__ = ["PENDING_MESSAGE", "Allocator", "AllocatorSettings", "Voter"]
