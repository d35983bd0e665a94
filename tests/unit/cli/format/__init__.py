"""Unit tests of `shoal.cli.format`."""
