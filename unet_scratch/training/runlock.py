"""One run folder, one writer: ``<folder>/.lock`` names the process that owns a run while it trains.

Two trainings writing into one folder would overwrite each other's checkpoints (the last writer wins, and a
run started a little later resumes from the other's half-finished epoch). ``fit`` and ``train`` therefore
take the folder's lock first. The lock file holds JSON: the owner's pid, host name, start time and a random
token; it is created complete and atomically (written to a temporary file, then hard-linked to ``.lock``,
which fails if a lock exists). A lock whose process is gone (same host, pid not running, or a pid reused by
a process started after the lock was taken) is stale and is taken over, with a note. A lock from another
host cannot be checked from here and is never taken over: the message says which file to delete.

Within one process the lock is re-entrant (``train`` holds it while ``fit`` takes it again).
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time

from ..serialization import TMP_PREFIX

LOCK = ".lock"
_HELD: dict = {}            # real path of a folder -> [count, RunLock] held by this process


class RunFolderBusy(RuntimeError):
    """Another live process owns this run folder."""


def _process_start_time(pid):
    """Wall-clock start time of a process (Linux /proc), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration, AttributeError):
        return None


def _alive(pid, since):
    """True if process ``pid`` runs and is the one that took a lock at time ``since``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass                                   # someone else's process: it exists
    except (OverflowError, ValueError, TypeError):
        return False
    started = _process_start_time(pid)
    return started is None or since is None or started <= since + 5      # a pid reused later: not the owner


def read_lock(path):
    """The lock's JSON as a dict, or None if it cannot be read (gone, or not JSON)."""
    try:
        with open(path) as f:
            info = json.load(f)
        return info if isinstance(info, dict) else None
    except (OSError, ValueError):
        return None


class RunLock:
    """``with RunLock(folder):`` (or ``acquire()`` / ``release()``) owns ``folder`` for this process.

    ``acquire`` raises :class:`RunFolderBusy` naming the owner; ``note`` says whether a stale lock was
    taken over (None otherwise).
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, LOCK)
        self.note = None
        self._key = None

    def acquire(self):
        key = os.path.realpath(self.folder)
        if key in _HELD:
            _HELD[key][0] += 1
            self._key, self.info = key, _HELD[key][1].info
            return self
        os.makedirs(self.folder, exist_ok=True)
        self.info = dict(pid=os.getpid(), host=socket.gethostname(), started=time.time(),
                         token=os.urandom(8).hex(), argv=sys.argv[:8])
        for _ in range(5):
            if self._create():
                _HELD[key] = [1, self]
                self._key = key
                return self
            holder = read_lock(self.path)
            if holder is None:
                try:
                    age = time.time() - os.path.getmtime(self.path)
                except OSError:
                    continue                                     # it just went away: try again
                if age < 10:
                    time.sleep(0.2)
                    continue
                self._take_over(None, "an unreadable lock file")
                continue
            if holder.get("host") == self.info["host"] and not _alive(holder.get("pid"), holder.get("started")):
                self._take_over(holder, f"a stale lock of process {holder.get('pid')}, which no longer runs")
                continue
            raise RunFolderBusy(self._busy_message(holder))
        raise RunFolderBusy(f"could not take the lock {self.path!r} (it keeps changing); is another run "
                            "starting in this folder? Use another --out (checkpoint_dir)")

    def _create(self) -> bool:
        """Create the lock file with its whole content, atomically; False if a lock exists."""
        tmp = os.path.join(self.folder, f"{TMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}.lock")
        with open(tmp, "w") as f:
            json.dump(self.info, f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:                          # no hard links here (some network or FAT file systems)
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                json.dump(self.info, f)
            return True
        finally:
            os.remove(tmp)

    def _take_over(self, holder, what):
        """Remove a stale lock, unless another process replaced it meanwhile."""
        aside = f"{self.path}.{os.getpid()}-{os.urandom(4).hex()}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        moved = read_lock(aside)
        if holder is not None and (moved or {}).get("token") != holder.get("token"):
            try:                                 # a fresh lock of a live process: put it back
                os.link(aside, self.path)
            except OSError:
                pass
        else:
            self.note = f"removed {what} ({self.path})"
        os.remove(aside)

    def _busy_message(self, holder):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started") or 0))
        host = holder.get("host")
        same_host = host == socket.gethostname()
        return (f"run folder {self.folder!r} is in use by process {holder.get('pid')} on "
                f"{'this machine' if same_host else host} since {when}: wait for that run to finish (or stop "
                f"it), or train into another folder (--out, checkpoint_dir). "
                + ("" if same_host else f"It cannot be checked from here; if no run uses the folder any more, "
                                        f"delete {self.path!r}."))

    def release(self):
        if self._key is None or self._key not in _HELD:
            return
        key, self._key = self._key, None
        entry = _HELD[key]
        entry[0] -= 1
        if entry[0] > 0:
            return
        del _HELD[key]
        holder = read_lock(self.path)
        if holder is not None and holder.get("token") == entry[1].info["token"]:
            try:
                os.remove(self.path)
            except OSError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
