"""Unit tests of `shoal.cli.service`."""
