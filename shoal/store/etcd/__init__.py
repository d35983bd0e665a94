"""The store's replication on etcd: a supervised member per manager, a client, the Backend.

``EtcdMember`` (member.py) runs the local etcd; ``EtcdClient`` (client.py) talks to it over the
JSON gateway with mutual TLS; ``EtcdBackend`` (backend.py) implements shoal.store.backend on it.
``shoal.store.etcd.testing`` makes throwaway certificates and members for tests.
"""

from shoal.store.etcd.backend import EtcdBackend
from shoal.store.etcd.client import EtcdClient
from shoal.store.etcd.member import EtcdMember
from shoal.store.etcd.settings import EtcdMemberSettings

__all__ = ["EtcdBackend", "EtcdClient", "EtcdMember", "EtcdMemberSettings"]
