"""The Docker API's JSON for images: ``GET /images/json`` with its filters (reference patterns
as Go's ``path.Match``, labels, dangling) and ``GET /images/{name}/json``."""

from __future__ import annotations

import pytest

from shoal.errors import NotFound
from shoal.image.service import ImageService


def test_list_and_filters_as_docker(loaded: ImageService) -> None:
    service = loaded
    listed = service.list()
    assert sorted(tuple(i["RepoTags"]) for i in listed) == [("shoaltest/a:1", "shoaltest/a:2"), ("shoaltest/b:1",)]
    assert {i["Containers"] for i in listed} == {-1} and all(isinstance(i["Created"], int) for i in listed)
    assert [i["RepoTags"] for i in service.list({"reference": ["shoaltest/b"]})] == [["shoaltest/b:1"]]
    assert len(service.list({"reference": ["shoaltest/*:2"]})) == 1
    assert len(service.list({"reference": ["*"]})) == 0  # * does not cross the /
    assert [i["RepoTags"][0] for i in service.list({"label": ["tier=web"]})] == ["shoaltest/a:1"]
    with pytest.raises(NotFound, match="No such image: shoaltest/zzz"):
        service.inspect("shoaltest/zzz")
