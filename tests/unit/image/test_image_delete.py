"""``docker rmi`` as moby's ImageDelete: a name is untagged, an ID named in several repositories
needs ``force``, and deleting removes the blobs and layers no other image uses."""

from __future__ import annotations

import asyncio

import pytest

from shoal.errors import Conflict
from shoal.image.service import ImageService
from tests.integration.registry_helper import blob_count


def test_remove_as_docker(loaded: ImageService) -> None:
    service = loaded
    service.tag("shoaltest/a:1", "shoaltest/c:1")  # now in two repositories
    a_id = service.inspect("shoaltest/a:1")["Id"]
    assert service.remove("shoaltest/a:2") == [{"Untagged": "shoaltest/a:2"}]
    with pytest.raises(Conflict, match=f"unable to delete {a_id[7:19]} \\(must be forced\\)"):
        service.remove(a_id)
    blobs = blob_count(service.root)
    answer = service.remove(a_id[7:19], force=True)
    assert answer == [{"Untagged": "shoaltest/a:1"}, {"Untagged": "shoaltest/c:1"}, {"Deleted": a_id}]
    assert blob_count(service.root) == blobs - 2  # its config and manifest; the shared layer stays
    b = asyncio.run(service.ensure("shoaltest/b:1"))
    assert all(d.exists() for d in b.layer_dirs)
    assert service.remove("shoaltest/b:1")[-1] == {"Deleted": b.id}
    assert blob_count(service.root) == 0 and not any(d.exists() for d in b.layer_dirs)
    assert service.list() == []
