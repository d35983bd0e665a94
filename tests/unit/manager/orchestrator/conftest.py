"""Fixtures for the orchestrator tests: a real Store over MemoryBackend, parts run as tasks."""

from __future__ import annotations

import pytest
from orch_helpers import FAST, Cluster

from shoal.manager.orchestrator import OrchestratorSettings
from shoal.store.store import Store


@pytest.fixture
def cluster(store: Store) -> Cluster:
    return Cluster(store)


@pytest.fixture
def settings() -> OrchestratorSettings:
    return FAST
