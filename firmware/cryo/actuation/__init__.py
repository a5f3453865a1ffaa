"""Valve drivers: normally closed, permit-gated, dead-man protected (see valve.py)."""
