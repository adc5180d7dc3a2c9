"""Ports: narrow protocols for storage and messaging, one module per backend."""
