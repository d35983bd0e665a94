"""The agent <-> dispatcher session protocol (swarmkit's dispatcher.proto, over a websocket).

Transport: the agent opens ``wss://MANAGER:2377/session`` with its node certificate (mutual TLS,
server name ``swarm-manager``). Every message is one JSON text frame encoding one of the structs
below, told apart by ``Type``. Order of a session:

    agent   -> Register      (its NodeDescription, with its TLSInfo)
    manager -> SessionInfo   (session id, heartbeat period, manager list, node role, the roots
                              to trust, whether to renew the certificate now)
    manager -> Assignments   (Full=True first: every task for the node with state >= ASSIGNED;
                              then Full=False increments: changed tasks and removed IDs)
    agent   -> Heartbeat     every HeartbeatPeriod; manager -> HeartbeatAck (next period)
    agent   -> StatusUpdate  batched task statuses (latest per task wins)
    manager -> SessionInfo   again whenever the manager list, period, role, roots or renewal
                             request change
    agent   -> TLSReport     its TLSInfo again, after a new certificate or new roots
    manager -> NetworkUpdate the gossip keys and the node's own network attachments (its ingress
                             address), at the start and whenever either changes
    manager -> LogSubscribe  read these tasks' logs (service/task logs); LogCancel ends it
    agent   -> LogBatch      log lines of a subscription; LogEnd once it has sent them all
    agent   -> AttachNetwork a standalone container asks for an address on an attachable
                             overlay (swarmkit's ResourceAllocator.AttachNetwork); the manager
                             answers AttachNetworkReply with the attachment task's ID (or why
                             not), and assigns that task to the node like any other
    agent   -> DetachNetwork the attachment task is no longer wanted: the manager deletes it

A node that misses 3 heartbeats is marked DOWN by the dispatcher. A session closed by the
manager (node removed, certificate revoked) carries websocket close code 4403 and a reason.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from shoal.model.objects import (
    EncryptionKey,
    NetworkAttachment,
    NodeDescription,
    Task,
    TaskStatus,
    TLSInfo,
)

__all__ = [
    "CLOSE_NOT_LEADER",
    "CLOSE_REMOVED",
    "Assignments",
    "AttachNetwork",
    "AttachNetworkReply",
    "DetachNetwork",
    "Heartbeat",
    "HeartbeatAck",
    "LogBatch",
    "LogCancel",
    "LogEnd",
    "LogEntry",
    "LogSelector",
    "LogSubscribe",
    "ManagerAddr",
    "Message",
    "NetworkUpdate",
    "Register",
    "SecretData",
    "SessionInfo",
    "StatusUpdate",
    "TLSReport",
    "TaskStatusUpdate",
    "decode_message",
    "encode_message",
]

CLOSE_REMOVED = 4403  # websocket close code: this node may not hold a session any more
CLOSE_NOT_LEADER = 4421  # close code of a manager that is not the leader; the reason is the leader's address


class _Msg(msgspec.Struct, rename="pascal", kw_only=True, tag_field="Type", tag=True):
    pass


class ManagerAddr(msgspec.Struct, rename="pascal", kw_only=True):
    node_id: str = msgspec.field(default="", name="NodeID")
    addr: str = ""  # host:port of the manager's swarm listener


class Register(_Msg, tag="register"):
    description: NodeDescription
    addr: str = ""  # the address the node advertises (its underlay IP)


class SessionInfo(_Msg, tag="session"):
    session_id: str = msgspec.field(name="SessionID")
    node_id: str = msgspec.field(name="NodeID")
    heartbeat_period: int  # nanoseconds
    managers: list[ManagerAddr]
    role: str  # "manager" | "worker": the role the node's certificate should carry
    # The roots the node trusts from now on (PEM; both old and new during a root rotation,
    # which the node also saves); "" from a manager that does not say.
    root_ca: str = msgspec.field(default="", name="RootCA")
    # A root rotation asks for a certificate from the new root now (swarmkit IssuanceStateRotate).
    rotate_certificate: bool = False


class SecretData(msgspec.Struct, rename="pascal", kw_only=True):
    """A secret's or config's data as a node receives it (swarmkit's assignment of a secret):
    only inside Assignments, only for the node's tasks that reference it, never written to disk
    by the agent. ``data`` is the plain bytes, base64 on the wire."""

    id: str = msgspec.field(name="ID")
    name: str
    data: bytes
    templating: str = ""  # the template driver's name ("golang"), or "" for none


class Assignments(_Msg, tag="assignments"):
    full: bool
    tasks: list[Task]  # new or changed tasks (the whole set when full)
    removed: list[str] = []  # task IDs no longer assigned (incremental only)
    # The secrets and configs the assigned tasks reference that the node does not hold yet (all
    # of them when full); the agent forgets one when no task of its own references it any more.
    secrets: list[SecretData] = []
    configs: list[SecretData] = []


class Heartbeat(_Msg, tag="heartbeat"):
    pass


class HeartbeatAck(_Msg, tag="heartbeat_ack"):
    period: int  # nanoseconds until the next heartbeat is due


class TaskStatusUpdate(msgspec.Struct, rename="pascal", kw_only=True):
    task_id: str = msgspec.field(name="TaskID")
    status: TaskStatus


class StatusUpdate(_Msg, tag="status"):
    updates: list[TaskStatusUpdate]


class NetworkUpdate(_Msg, tag="network"):
    keys: list[EncryptionKey]  # the gossip keys, oldest first (the newest seals)
    attachments: list[NetworkAttachment] = []  # the node's own (Node.Attachments)
    data_path_port: int = 4789  # the swarm's VXLAN UDP port (Cluster.DataPathPort, set at init)


class TLSReport(_Msg, tag="tls"):
    """The node's TLS info changed (a new certificate, new roots): the manager stores it in the
    node's description, where a root rotation looks for the new issuer."""

    tls_info: TLSInfo = msgspec.field(name="TLSInfo")


class LogSelector(msgspec.Struct, rename="pascal", kw_only=True):
    """What to read (swarmkit's LogSubscriptionOptions): times are unix nanoseconds."""

    task_ids: list[str] = msgspec.field(default_factory=list, name="TaskIDs")
    follow: bool = False
    tail: int = -1  # the last N lines of each task; -1 = all
    since: int = 0
    until: int = 0
    stdout: bool = True
    stderr: bool = True


class LogSubscribe(_Msg, tag="log_subscribe"):
    subscription_id: str = msgspec.field(name="SubscriptionID")
    selector: LogSelector


class LogCancel(_Msg, tag="log_cancel"):
    subscription_id: str = msgspec.field(name="SubscriptionID")


class LogEntry(msgspec.Struct, rename="pascal", kw_only=True, array_like=True):
    task_id: str = msgspec.field(name="TaskID")
    stream: int  # 1 stdout, 2 stderr (the multiplexed stream's numbers)
    time: int  # unix nanoseconds
    data: bytes


class LogBatch(_Msg, tag="log_batch"):
    subscription_id: str = msgspec.field(name="SubscriptionID")
    entries: list[LogEntry]


class LogEnd(_Msg, tag="log_end"):
    subscription_id: str = msgspec.field(name="SubscriptionID")
    error: str = ""  # why the node could not send every line ("" when it did)


class AttachNetwork(_Msg, tag="attach_network"):
    """A standalone container of the node joins an attachable overlay."""

    request_id: str = msgspec.field(name="RequestID")
    container_id: str = msgspec.field(name="ContainerID")
    network: str  # name or ID, as the user gave it
    addresses: list[str] = []  # a fixed address asked for ("10.0.9.9"), else allocated


class AttachNetworkReply(_Msg, tag="attach_network_reply"):
    request_id: str = msgspec.field(name="RequestID")
    task_id: str = msgspec.field(default="", name="TaskID")  # "" on error
    error: str = ""  # the manager's words
    code: str = ""  # the error's kind: "PermissionDenied", "NotFound", "InvalidArgument", ...


class DetachNetwork(_Msg, tag="detach_network"):
    """The node no longer wants this attachment task (only its own may be removed)."""

    task_id: str = msgspec.field(name="TaskID")


Message = (Register | SessionInfo | Assignments | Heartbeat | HeartbeatAck | StatusUpdate
           | LogSubscribe | LogCancel | LogBatch | LogEnd | NetworkUpdate | TLSReport | AttachNetwork
           | AttachNetworkReply | DetachNetwork)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Message)


def encode_message(msg: Message) -> str:
    return _encoder.encode(msg).decode()


def decode_message(data: str | bytes) -> Message:
    return _decoder.decode(data)


# Kept for type checkers that want the literal set of tags.
Tag = Literal["register", "session", "assignments", "heartbeat", "heartbeat_ack", "status",
              "log_subscribe", "log_cancel", "log_batch", "log_end", "network", "tls",
              "attach_network", "attach_network_reply", "detach_network"]
