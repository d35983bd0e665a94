"""Fixtures for the orchestrator tests: a real Store over MemoryBackend, parts run as tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from orch_helpers import FAST, Cluster, Runner

from shoal.manager.orchestrator import OrchestratorSettings
from shoal.store.store import Store


@pytest.fixture
async def runner() -> AsyncIterator[Runner]:
    r = Runner()
    try:
        yield r
    finally:
        await r.close()


@pytest.fixture
def cluster(store: Store) -> Cluster:
    return Cluster(store)


@pytest.fixture
def settings() -> OrchestratorSettings:
    return FAST
