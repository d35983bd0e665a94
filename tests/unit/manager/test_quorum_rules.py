"""The demotion rule (swarmkit raft.CanRemoveMember) on node objects."""

from __future__ import annotations

from shoal.manager.controlapi.node import can_remove_manager
from shoal.model.objects import ManagerStatus, Node
from shoal.model.specs import NodeSpec


def _manager(node_id: str, reachability: str, *, member: bool = True) -> Node:
    return Node(id=node_id, spec=NodeSpec(role="manager"), role="manager", etcd_member=member,
                manager_status=ManagerStatus(reachability=reachability))


def test_three_managers_one_down() -> None:
    nodes = [_manager("a", "reachable"), _manager("b", "reachable"), _manager("c", "unreachable")]
    assert can_remove_manager(nodes, "c")  # the down one: 2 of the 2 left
    assert not can_remove_manager(nodes, "a")  # 1 of the 2 left is reachable: no quorum


def test_non_members_do_not_count() -> None:
    nodes = [_manager("a", "reachable"), _manager("b", "unreachable", member=False),
             _manager("c", "unreachable", member=False)]
    assert can_remove_manager(nodes, "b")  # after force-new-cluster: not a member at all
    assert not can_remove_manager(nodes, "a")


def test_two_managers() -> None:
    nodes = [_manager("a", "reachable"), _manager("b", "reachable")]
    assert can_remove_manager(nodes, "b")
    nodes[1] = _manager("b", "unreachable")
    assert can_remove_manager(nodes, "b")
    assert not can_remove_manager(nodes, "a")
