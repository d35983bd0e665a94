"""Each module's ``__all__`` lists exactly the public names it defines."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "shoal.manager.ca",
    "shoal.manager.ca.rootca",
    "shoal.manager.ca.rotation",
    "shoal.manager.ca.reconciler",
    "shoal.manager.ca.external",
    "shoal.manager.ca.signing",
    "shoal.pki.subjects",
    "shoal.pki.tokens",
    "shoal.node",
    "shoal.pki.identity",
    "shoal.node.join",
    "shoal.node.renewal",
    "shoal.pki._tls",
    "shoal.pki.keypair",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_honest(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert all(hasattr(module, n) for n in exported)
    defined = {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_") and getattr(obj, "__module__", None) == name
    }
    assert defined <= exported, f"public but not in __all__: {defined - exported}"
