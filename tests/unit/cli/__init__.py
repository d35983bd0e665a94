"""Unit tests of the shoal CLI (no daemon: a fake answers through httpx.MockTransport)."""
