"""Unit tests of `shoal.cli.compose`."""
