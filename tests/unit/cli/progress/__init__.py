"""Unit tests of `shoal.cli.progress`."""
