"""The store's replication on etcd: a supervised member per manager, a client, the Backend.

``EtcdMember`` (member.py) runs the local etcd; two clients with one API talk to it with mutual
TLS: ``GrpcEtcdClient`` (grpc_client.py, native gRPC: what the manager and the member's health
probe use, about half of etcd's CPU per request) and ``EtcdClient`` (client.py, the JSON gateway
over aiohttp: tests and benches on etcd without authentication, which the gateway cannot carry); ``EtcdBackend`` (backend.py) implements shoal.store.backend on either.
``shoal.store.etcd.testing`` makes throwaway certificates and members for tests.
"""

from shoal.store.etcd.backend import EtcdBackend
from shoal.store.etcd.client import EtcdClient
from shoal.store.etcd.grpc_client import GrpcEtcdClient
from shoal.store.etcd.member import EtcdMember
from shoal.store.etcd.settings import EtcdMemberSettings

EtcdAPI = EtcdClient | GrpcEtcdClient  # either client: the same methods and answers

__all__ = ["EtcdAPI", "EtcdBackend", "EtcdClient", "EtcdMember", "EtcdMemberSettings", "GrpcEtcdClient"]
