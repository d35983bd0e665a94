"""shoald's flags refused before anything starts."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from shoal.daemon import main


def test_bridge_takes_only_none(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--executor", "sim", "--data-root", str(tmp_path / "d"),
                                       "--exec-root", str(tmp_path / "e"), "--bridge", "docker0"])
    assert result.exit_code == 2
    assert "--bridge 'docker0': only \"none\" is supported" in result.output
    assert not (tmp_path / "d").exists()  # refused before anything was made
