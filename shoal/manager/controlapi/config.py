"""Config create, update (labels only), remove (swarmkit controlapi/config.go). A config's data
is not secret: it is stored as sent (base64) and shown by the API."""

from __future__ import annotations

import hmac

from shoal.errors import SequenceConflict
from shoal.manager.controlapi.refs import services_using
from shoal.manager.controlapi.status import already_exists, invalid
from shoal.manager.controlapi.validate import decode_data, validate_object_name, validate_templating
from shoal.model.ids import new_id
from shoal.model.objects import Config
from shoal.model.specs import ConfigSpec
from shoal.store.store import Store, Tx, copy

__all__ = ["MAX_CONFIG_SIZE", "create_config", "remove_config", "update_config"]

MAX_CONFIG_SIZE = 1000 * 1024  # swarmkit controlapi MaxConfigSize


def _stored(store: Store, written: Config) -> Config:
    """As the store holds it now, with its Version.Index (the caller may update it next)."""
    return store.view().get(Config, written.id) or written


async def create_config(store: Store, spec: ConfigSpec) -> Config:
    validate_object_name(spec.name)
    templating = validate_templating(spec.templating, "config")
    data = decode_data(spec.data)
    if not 0 < len(data) < MAX_CONFIG_SIZE:
        raise invalid(f"config data must be larger than 0 and less than {MAX_CONFIG_SIZE} bytes")

    def fn(tx: Tx) -> Config:
        if tx.view.by_name(Config, spec.name):
            raise already_exists(f"config {spec.name} already exists")
        config = Config(id=new_id(), spec=ConfigSpec(name=spec.name, labels=spec.labels or {},
                                                     data=spec.data, templating=templating))
        tx.create(config)
        return config

    # A name taken meanwhile: the conflict on retry.
    return _stored(store, await store.update(fn, retries=1))


async def update_config(store: Store, ref: str, version: int, spec: ConfigSpec) -> Config:
    """Only Labels change; the name must be the same and Data, if sent, the stored bytes."""
    sent = decode_data(spec.data)

    def fn(tx: Tx) -> Config:
        current = tx.view.resolve(Config, ref, what="config")
        same_data = not sent or hmac.compare_digest(sent, decode_data(current.spec.data))
        if spec.name != current.spec.name or not same_data:
            raise invalid("only updates to Labels are allowed")
        if current.version.index != version:
            raise SequenceConflict()
        config = copy(current)
        config.spec.labels = spec.labels or {}
        tx.update(config)
        return config

    return _stored(store, await store.update(fn))


async def remove_config(store: Store, ref: str) -> None:
    def fn(tx: Tx) -> None:
        config = tx.view.resolve(Config, ref, what="config")
        users = services_using(tx.view, config)
        if users:
            noun = "service" if len(users) == 1 else "services"
            raise invalid(f"config '{config.spec.name}' is in use by the following {noun}: "
                          f"{', '.join(users)}")
        tx.delete(config)

    await store.update(fn, retries=3)
