"""Secret create, update (labels only), remove (swarmkit controlapi/secret.go).

The data never reaches the store in clear: it is sealed under the cluster's secrets key, bound to
the secret's ID, into ``Secret.sealed``, and the stored spec has no ``Data``; the secrets key is
itself sealed in the store under the managers' store DEK (``shoal.manager.deks``). Shoal has no secret
store plugins, so a ``Driver`` is refused rather than stored and never honoured."""

from __future__ import annotations

import hmac

from shoal.errors import FailedPrecondition, SequenceConflict
from shoal.manager.controlapi.refs import services_using
from shoal.manager.controlapi.status import already_exists, invalid
from shoal.manager.controlapi.validate import decode_data, validate_object_name, validate_templating
from shoal.manager.deks import ClusterKeys
from shoal.manager.secretbox import open_sealed, seal
from shoal.model.ids import new_id
from shoal.model.objects import Secret
from shoal.model.specs import SecretSpec
from shoal.store.store import Store, Tx, copy

__all__ = ["MAX_SECRET_SIZE", "create_secret", "remove_secret", "update_secret"]

MAX_SECRET_SIZE = 500 * 1024  # swarmkit api/validation MaxSecretSize


def _check_driver(spec: SecretSpec) -> None:
    if spec.driver is None:
        return
    if not spec.driver.name:
        raise invalid("secret driver must have a name")
    raise invalid(f"secret driver {spec.driver.name!r} is not supported: Shoal has no secret "
                  "store plugins; create the secret with its data instead")


def _secrets_key(tx: Tx, keys: ClusterKeys) -> str:
    """The cluster's key, in clear; a swarm made before secrets existed gets one in this
    transaction."""
    cluster = tx.view.cluster()
    if cluster is None:
        raise FailedPrecondition("the swarm has no cluster object")
    if cluster.secrets_key:
        return keys.secrets_key(cluster)
    cluster = copy(cluster)
    plain, cluster.secrets_key = keys.new_secrets_key(cluster)
    tx.update(cluster)  # a concurrent creator making one too fails its compare and retries
    return plain


def _stored(store: Store, written: Secret) -> Secret:
    """As the store holds it now, with its Version.Index (the caller may update it next)."""
    return store.view().get(Secret, written.id) or written


async def create_secret(store: Store, spec: SecretSpec, *, keys: ClusterKeys) -> Secret:
    validate_object_name(spec.name)
    _check_driver(spec)
    templating = validate_templating(spec.templating, "secret")
    data = decode_data(spec.data)
    if not 0 < len(data) < MAX_SECRET_SIZE:
        raise invalid(f"secret data must be larger than 0 and less than {MAX_SECRET_SIZE} bytes")

    def fn(tx: Tx) -> Secret:
        if tx.view.by_name(Secret, spec.name):
            raise already_exists(f"secret {spec.name} already exists")
        secret = Secret(id=new_id(), spec=SecretSpec(name=spec.name, labels=spec.labels or {},
                                                     templating=templating))
        secret.sealed = seal(_secrets_key(tx, keys), data, secret_id=secret.id)
        tx.create(secret)
        return secret

    # A name taken meanwhile: the conflict on retry.
    return _stored(store, await store.update(fn, retries=1))


async def update_secret(store: Store, ref: str, version: int, spec: SecretSpec, *,
                        keys: ClusterKeys) -> Secret:
    """Only Labels change; the name must be the same and Data, if sent, the stored bytes (a
    stack re-deploy sends them again). Driver and Templating are ignored, as swarmkit does."""
    sent = decode_data(spec.data)

    def fn(tx: Tx) -> Secret:
        current = tx.view.resolve(Secret, ref, what="secret")
        same_data = True
        if sent:
            cluster = tx.view.cluster()
            key = keys.secrets_key(cluster) if cluster else ""
            stored = open_sealed(key, current.sealed, secret_id=current.id)
            same_data = hmac.compare_digest(sent, stored)
        if spec.name != current.spec.name or not same_data:
            raise invalid("only updates to Labels are allowed")
        if current.version.index != version:
            raise SequenceConflict()
        secret = copy(current)
        secret.spec.labels = spec.labels or {}
        tx.update(secret)
        return secret

    return _stored(store, await store.update(fn))


async def remove_secret(store: Store, ref: str) -> None:
    def fn(tx: Tx) -> None:
        secret = tx.view.resolve(Secret, ref, what="secret")
        users = services_using(tx.view, secret)
        if users:
            noun = "service" if len(users) == 1 else "services"
            raise invalid(f"secret '{secret.spec.name}' is in use by the following {noun}: "
                          f"{', '.join(users)}")
        tx.delete(secret)

    await store.update(fn, retries=3)
