"""Hosts on other platforms, each a thin adapter: event -> delivery -> stage -> send."""
