"""Every CLI module declares its surface in ``__all__`` and the names exist (STYLE 15)."""

from __future__ import annotations

import importlib
import pkgutil

import shoal.cli


def test_every_module_exports_what_it_declares() -> None:
    for module_info in pkgutil.walk_packages(shoal.cli.__path__, "shoal.cli."):
        module = importlib.import_module(module_info.name)
        assert module.__doc__, f"{module.__name__} has no docstring"
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"{module.__name__} has no __all__"
        for name in exported:
            assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"


def test_package_surface() -> None:
    assert sorted(shoal.cli.__all__) == ["Client", "DaemonError", "DaemonUnreachable", "main"]
