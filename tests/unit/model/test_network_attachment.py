"""A task's network attachment carries the whole Network as a typed struct; its JSON is the one
the model wrote when the attachment was a dict (msgspec.to_builtins of the Network)."""

from __future__ import annotations

import msgspec

from shoal.model.codec import encode
from shoal.model.objects import (
    VXLAN_ID_OPTION,
    Network,
    NetworkAttachment,
    Task,
    TaskStatus,
    Version,
    overlay_driver_state,
    vxlan_ids_of,
)
from shoal.model.specs import IPAM, IPAMConfig, NetworkSpec
from shoal.model.states import TaskState

# Written by the model before the change (the attachment's network was a dict).
TASK_JSON = (
    b'{"ID":"t1","Version":{"Index":0},"CreatedAt":"0001-01-01T00:00:00Z",'
    b'"UpdatedAt":"0001-01-01T00:00:00Z","Name":"","Labels":null,"Spec":{"ContainerSpec":null,'
    b'"PluginSpec":null,"NetworkAttachmentSpec":null,"Resources":null,"RestartPolicy":null,'
    b'"Placement":null,"Networks":null,"LogDriver":null,"ForceUpdate":0,"Runtime":""},'
    b'"ServiceID":"s1","ServiceName":"","Slot":1,"NodeID":"n1",'
    b'"Status":{"Timestamp":"2024-01-01T00:00:00.000000Z","State":"running",'
    b'"Message":"started","Err":"","ContainerStatus":null,"PortStatus":null},'
    b'"DesiredState":"shutdown","NetworksAttachments":[{"Network":{"ID":"net1",'
    b'"Version":{"Index":7},"CreatedAt":"0001-01-01T00:00:00Z",'
    b'"UpdatedAt":"0001-01-01T00:00:00Z","Spec":{"Name":"web","Driver":"overlay","Scope":"",'
    b'"EnableIPv4":null,"EnableIPv6":null,"IPAM":null,"Internal":false,"Attachable":false,'
    b'"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":null,"Labels":null},'
    b'"DriverState":{"Name":"overlay",'
    b'"Options":{"com.docker.network.driver.overlay.vxlanid_list":"4097"}},'
    b'"IPAM":{"Driver":"default","Options":null,"Config":[{"Subnet":"10.0.1.0/24",'
    b'"IPRange":"","Gateway":"10.0.1.1","AuxAddress":null}]}},"Addresses":["10.0.1.5/24"],'
    b'"Aliases":["web"]}],"JobIteration":null,"Endpoint":null,"EndpointSpec":null}'
)
# The same task written now: the model has since gained the internal ServiceLabels.
TASK_JSON_NOW = TASK_JSON.replace(b'"ServiceName":"",', b'"ServiceName":"","ServiceLabels":null,')


def _network() -> Network:
    return Network(id="net1", version=Version(index=7), spec=NetworkSpec(name="web", driver="overlay"),
                   driver_state=overlay_driver_state([4097]),
                   ipam_options=IPAM(config=[IPAMConfig(subnet="10.0.1.0/24", gateway="10.0.1.1")]))


def _task() -> Task:
    status = TaskStatus(timestamp="2024-01-01T00:00:00.000000Z", state=TaskState.RUNNING,
                        message="started")
    att = NetworkAttachment(network=_network(), addresses=["10.0.1.5/24"], aliases=["web"])
    return Task(id="t1", service_id="s1", slot=1, node_id="n1", status=status,
                desired_state=TaskState.SHUTDOWN, networks_attachments=[att])


def test_task_with_attachment_encodes_as_before() -> None:
    assert encode(_task()) == TASK_JSON_NOW


def test_stored_task_decodes_to_a_typed_network() -> None:
    task = msgspec.json.decode(TASK_JSON, type=Task)
    assert task == _task()
    net = (task.networks_attachments or [])[0].network
    assert isinstance(net, Network) and net.id == "net1" and net.version.index == 7
    assert net.vxlan_ids() == [4097] and net.subnets()[0].gateway == "10.0.1.1"
    assert encode(task) == TASK_JSON_NOW


def test_driver_state_and_subnets_are_read_in_one_place() -> None:
    state = overlay_driver_state([4097, 4098])
    assert state == {"Name": "overlay", "Options": {VXLAN_ID_OPTION: "4097,4098"}}
    assert VXLAN_ID_OPTION == "com.docker.network.driver.overlay.vxlanid_list"
    assert Network(id="n", driver_state=state).vxlan_ids() == [4097, 4098]
    assert vxlan_ids_of(None) == [] == vxlan_ids_of({"Name": "overlay"})
    requested = NetworkSpec(ipam=IPAM(config=[IPAMConfig(subnet="10.9.0.0/24")]))
    net = Network(id="n", spec=requested)
    assert requested.subnets() == net.subnets() == [IPAMConfig(subnet="10.9.0.0/24")]
    net.ipam_options = IPAM(config=[IPAMConfig(subnet="10.9.0.0/24", gateway="10.9.0.1")])
    assert net.subnets()[0].gateway == "10.9.0.1" and net.current_ipam() is net.ipam_options
    assert NetworkSpec().subnets() == [] == Network(id="n").subnets()
