"""Unit tests of `shoal.cli.commands`."""
