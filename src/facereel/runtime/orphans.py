"""No process outlives `facereel up`: children die with their parent, and one data directory
has one `up` at a time.

`kill -9` of `up` used to leave its fork server, pipeline workers and app workers running (they
processed more videos, and a restart then ran two sets of workers). On Linux each child asks the
kernel for a parent-death signal (`PR_SET_PDEATHSIG`), so the fork server dies with `up` and
every worker with the fork server; the signal is SIGKILL because a parent that was killed cannot
drain anything (a message in flight comes back after its visibility timeout). Importing this
module in the fork server (it is first in the fork server's preload list) sets it up there.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from facereel.errors import ConfigError

PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Have the kernel kill this process when its parent dies; exit at once if the parent is
    already gone (it may have died before the request). False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died between our start and the request
        os._exit(1)
    return True


def _in_fork_server() -> bool:
    """multiprocessing's fork server runs `python -c 'from multiprocessing.forkserver import
    main; ...'` and imports its preload modules before serving: that is when we are here."""
    return sys.argv[:1] == ["-c"] and "multiprocessing.forkserver" in sys.modules


@contextlib.contextmanager
def sole_service(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's lock while `up` runs: a second `up` on the same directory
    (or a restart while the old one's workers still run) is refused in one line. The lock is
    the kernel's (flock): it is released when the holder dies, however it dies."""
    lock_path = data_dir / "run" / "up.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = lock_path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise ConfigError(f"{data_dir} is in use by another facereel up{who}: stop it "
                              "first, or use another --data-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


if _in_fork_server():
    die_with_parent()
