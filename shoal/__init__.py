"""Shoal: Docker Swarm mode in Python."""

__version__ = "0.1.0"
