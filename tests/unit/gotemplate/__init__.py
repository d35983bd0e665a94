"""Unit tests of `shoal.gotemplate`."""
