"""Shepherd: a self-healing control plane for a fleet of agents."""

__version__ = "0.1.0"
