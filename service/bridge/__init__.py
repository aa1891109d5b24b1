"""Bridges that bring other systems' events into Tripwire's events topic."""
