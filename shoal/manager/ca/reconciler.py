"""The root rotation reconciler (swarmkit ca/reconciler.go): a leader part that drives a root CA
rotation, once the control API has started one (``rotation.py``), to its end.

Level-triggered over nodes and the cluster: a node has converged when the TLS info it reports
(``Description.TLSInfo``: its certificate's issuer subject and public key) names the new root.
Nodes that have not are asked to renew now (``Node.rotate_certificate``, swarmkit's
IssuanceStateRotate; the dispatcher tells the node, the CA clears it when it signs), at most
``batch`` of them every ``interval`` so a large swarm does not renew all at once. When every node
has converged the rotation completes in one compare-and-set write: the new root alone, new join
tokens (``finished_root_ca``). As swarmkit, a node that never renews (a down node) holds the
rotation until it comes back or is removed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from shoal.errors import SequenceConflict, Unavailable
from shoal.manager.ca.rotation import desired_issuer, finished_root_ca, set_root_ca
from shoal.model.objects import Cluster, Node, RootCAState
from shoal.store.store import LostLeadership, Store, Tx, copy
from shoal.store.watch import SubscriptionOverflow

__all__ = ["ROTATE_BATCH", "ROTATE_INTERVAL", "RootRotationReconciler", "unconverged"]

log = logging.getLogger(__name__)

ROTATE_BATCH = 30  # nodes asked to renew per interval (swarmkit IssuanceStateRotateMaxBatchSize)
ROTATE_INTERVAL = 3.0  # seconds between batches (swarmkit defaultRootReconciliationInterval)
_GAP, _MAX_LATENCY = 0.05, 1.0  # store changes are read in batches (STYLE rule 5)


def unconverged(nodes: list[Node], root_ca: RootCAState) -> list[Node]:
    """The nodes whose certificate is not issued by the root the rotation goes to."""
    wanted = desired_issuer(root_ca)
    return [n for n in nodes if (tls := n.description.tls_info) is None
            or (tls.cert_issuer_subject, tls.cert_issuer_public_key) != wanted]


class RootRotationReconciler:
    def __init__(self, store: Store, *, interval: float = ROTATE_INTERVAL, batch: int = ROTATE_BATCH,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._interval = interval
        self._batch = batch
        self._clock = clock
        self._last_batch: float | None = None  # when nodes were last asked to renew

    async def run(self) -> None:
        sub = self._store.subscribe([Node, Cluster])
        try:
            while True:
                try:
                    await self.reconcile()
                except LostLeadership:
                    raise  # the term is over: the manager stops the leader parts
                except (SequenceConflict, Unavailable) as exc:  # the next pass tries again
                    log.warning("root rotation: %s", exc.message)
                with contextlib.suppress(SubscriptionOverflow):  # the view is read again
                    await sub.next_batch(gap=_GAP, max_latency=_MAX_LATENCY, idle=self._interval)
        finally:
            sub.close()

    async def reconcile(self) -> None:
        """One pass: complete the rotation, or ask the next batch of nodes to renew."""
        view = self._store.view()
        cluster = view.cluster()
        root_ca = cluster.root_ca if cluster is not None else None
        if root_ca is None or root_ca.root_rotation is None:
            return
        pending = unconverged(view.all(Node), root_ca)
        if not pending:
            await self._complete(root_ca)
            return
        now = self._clock()
        if self._last_batch is not None and now - self._last_batch < self._interval:
            return
        asked = [n.id for n in pending if not n.rotate_certificate][: self._batch]
        if not asked:
            return
        self._last_batch = now

        def fn(tx: Tx) -> None:
            for node_id in asked:
                node = tx.view.get(Node, node_id)
                if node is not None and not node.rotate_certificate:
                    node = copy(node)
                    node.rotate_certificate = True
                    tx.update(node)

        await self._store.update(fn, atomic=False)
        log.info("root rotation: %d of %d nodes asked to renew their certificates now (%d not "
                 "issued by the new root yet)", len(asked), len(view.all(Node)), len(pending))

    async def _complete(self, seen: RootCAState) -> None:
        def fn(tx: Tx) -> bool:
            current = tx.view.cluster()
            if current is None or current.root_ca != seen:
                return False  # another rotation started, or this one ended: the next pass sees
            cluster = copy(current)
            root_ca, cluster.join_tokens = finished_root_ca(current)
            set_root_ca(cluster, root_ca)
            tx.update(cluster)
            return True

        if await self._store.update(fn):
            log.info("completed root rotation: every node has a certificate from the new root; "
                     "join tokens regenerated")
