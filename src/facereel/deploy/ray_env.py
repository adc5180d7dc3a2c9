"""Ray's environment, set before Ray is imported (it reads it then)."""

from __future__ import annotations

import ipaddress
import os

LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _loopback(address: str) -> bool:
    host = address.rpartition(":")[0] or address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def keep_on_loopback(address: str) -> None:
    """Ray turns 127.0.0.1 into this machine's network address, both for a cluster it joins
    and for a node it starts, unless told there is no cluster beyond this machine
    (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, which does nothing else on Linux). A run on a Ray
    of its own, or joining one at a loopback address, must stay on loopback. Call before
    `import ray`; a value already set is kept."""
    if not address or _loopback(address):
        os.environ.setdefault(LOOPBACK_ONLY, "0")
