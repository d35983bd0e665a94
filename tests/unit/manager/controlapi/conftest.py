"""No allocator runs here: service create/update do not wait for VIPs that never come."""

from __future__ import annotations

import pytest

from shoal.manager.controlapi import service


@pytest.fixture(autouse=True)
def no_vip_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    async def allocated(store: object, service_id: str) -> None:
        return None

    monkeypatch.setattr(service, "_await_allocation", allocated)
