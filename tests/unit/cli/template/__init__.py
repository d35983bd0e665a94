"""Unit tests of `shoal.cli.template`."""
