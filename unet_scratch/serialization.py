"""Saving and loading files safely: .npz only, no pickle, atomic replace, nothing half-written.

Every file this package writes (weights, checkpoints, PNGs, JSON) goes through :func:`atomic_write`: the
bytes go to a temporary file ``.tmp-<pid>-<random><suffix>`` in the target's folder, are flushed to disk
(``fsync``), and the temporary file is renamed over the target with ``os.replace`` (atomic on POSIX and
Windows); then the folder itself is fsynced, so the rename survives a power cut. A crash, a full disk or
Ctrl-C at any moment leaves either the old file or the new one, never a mix, and no temporary file.

The temporary file is created with mode 0o666 and the kernel applies the process's umask to it, as for
any new file; the umask itself is never read or changed (changing it races with other threads).
Temporary files left by a process that was killed (SIGKILL cannot be caught) are removed by
:func:`clean_orphans`, which ``fit`` and the command line call on a run folder before they write to it.
"""
from __future__ import annotations

import errno
import json
import os
import re
import time
import zipfile

import numpy as np

TMP_PREFIX = ".tmp-"
_STARTED = time.time()          # files older than this process cannot be this process's own writes


# ------------------------------------------------------------------------------------------- writing
def _create_temporary(folder, suffix):
    """(fd, path) of a new, empty file in folder, made with mode 0o666 & ~umask (O_EXCL: never an existing one)."""
    for _ in range(100):
        path = os.path.join(folder, f"{TMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}{suffix}")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {folder!r}")


def fsync_folder(folder) -> None:
    """Make a rename inside ``folder`` durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass                                      # some file systems refuse fsync on a folder
    finally:
        os.close(fd)


def atomic_write(path, write, suffix=None) -> str:
    """Write a file through ``write(f)`` (f: a binary file object) atomically: a temporary file in the same
    folder, fsync, ``os.replace`` over ``path``, fsync of the folder. Returns the path as a string.

    On any failure (a full disk, Ctrl-C) the temporary file is removed and ``path`` keeps its old content.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1] if suffix is None else suffix
    fd, tmp = _create_temporary(folder, suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    fsync_folder(folder)
    return path


def atomic_savez(path, arrays: dict) -> str:
    """Write ``arrays`` (name -> array) to ``path`` as an uncompressed .npz, atomically. Returns the path."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return atomic_write(path, lambda f: np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()}), ".npz")


def atomic_write_text(path, text: str) -> str:
    """A text file (JSON, say), written atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True                              # exists, but belongs to another user
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    return True


# .tmp-<pid>-<8 hex digits><suffix> (this module), or .tmp-<8 random characters>.npz (older versions, mkstemp)
_TMP_NAME = re.compile(r"^\.tmp-(?:(\d+)-[0-9a-f]{8}\.\w+|[a-z0-9_]{8}\.npz)$")


def clean_orphans(folder) -> list[str]:
    """Remove temporary files that a killed writer left in ``folder``; returns their names.

    A file ``.tmp-<pid>-<hex>.<ext>`` is an orphan when process <pid> is gone; a temporary file without a
    pid (older versions) when it is older than this process. A live writer's file is never touched.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TMP_NAME.match(name)
        if match is None:
            continue
        path = os.path.join(folder, name)
        try:
            if match.group(1) is not None:
                orphan = not _pid_alive(int(match.group(1)))
            else:
                orphan = os.path.getmtime(path) < _STARTED
            if orphan and os.path.isfile(path):
                os.remove(path)
                removed.append(name)
        except OSError:
            continue
    return removed


def check_writable(path, what="output", extensions=None) -> str:
    """Check, before any work is done, that ``path`` can be written; returns it as a string.

    what: how the message names the file (a flag such as "--output"). extensions: the allowed suffixes
    (lower case, with the dot), or None for any. Raises ValueError naming the problem and the fix. The
    folder is probed by creating (and removing) a temporary file, which is the only reliable test
    (``os.access`` says yes to root on read-only mounts and pseudo file systems).
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if os.path.isdir(path):
        raise ValueError(f"{what} {path!r} is a directory; give a file name inside it, e.g. "
                         f"{os.path.join(path, 'mask.png')!r}")
    if extensions is not None and ext not in extensions:
        if not ext:
            raise ValueError(f"{what} {path!r} has no file extension; add one of {', '.join(extensions)} "
                             f"(e.g. {path}{extensions[0]})")
        raise ValueError(f"{what} {path!r}: {ext} is not supported here; use {' or '.join(extensions)}"
                         + (" (JPEG is lossy: a saved mask would hold grey levels, not 0 and 255)"
                            if ext in (".jpg", ".jpeg") else ""))
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(folder):
        parent = folder
        while parent and not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if parent and not os.path.isdir(parent):
            raise ValueError(f"{what} {path!r}: {parent!r} is a file, not a folder; choose another path")
        raise ValueError(f"{what} {path!r}: the folder {folder!r} does not exist; create it first "
                         f"(mkdir -p {folder}) or choose another path")
    if not os.path.isdir(folder):
        raise ValueError(f"{what} {path!r}: {folder!r} is a file, not a folder; choose another path")
    try:
        fd, probe = _create_temporary(folder, ".probe")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise ValueError(f"{what} {path!r}: cannot write in {folder!r} ({err.strerror or err}); "
                         "choose a folder you can write to") from err
    return path


# ------------------------------------------------------------------------------------------- reading
def load_npz(path, what="weights file") -> dict:
    """Read every array of an .npz into a dict (``allow_pickle=False``), with errors that say what to do.

    what: how the message names the file ("weights file", "checkpoint").
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such {what}: {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"{what} {path!r} is a directory; give the .npz file inside it "
                         f"(e.g. {os.path.join(path, 'weights.npz')!r})")
    nothing = "nothing was loaded, the model keeps its current weights"
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x93NUMPY"):
        raise ValueError(f"{what} {path!r} is a single .npy array, not an .npz of named weights; save a "
                         "model with model.save_weights(path) (train writes weights.npz in its --out folder)")
    if not head.startswith(b"PK"):
        kind = ("empty" if not head else "pickled Python data" if head.startswith(b"\x80")
                else f"a file starting with {head[:8]!r}")
        raise ValueError(f"{path!r} is not a readable .npz file ({kind}, not a zip archive of arrays); "
                         f"{nothing}" + ("; this package never loads pickles (they can run code): start "
                                         "afresh (train --fresh) or point to another file"
                                         if head.startswith(b"\x80") else ""))
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except ValueError as err:
        if "pickle" in str(err):
            raise ValueError(f"{what} {path!r} holds pickled Python objects, which this package never writes "
                             f"and never loads (loading pickles can run code); it was not saved by "
                             f"unet_scratch: start afresh (train --fresh) or point to another file; {nothing}") \
                from err
        raise ValueError(f"{path!r} is not a readable .npz file (truncated or corrupt: {err}); {nothing}") from err
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise ValueError(f"{path!r} is not a readable .npz file (truncated or corrupt: {err}); {nothing}") from err


def read_npz_entry(path, name):
    """One array of an .npz (None if the file or the entry is missing or unreadable): a cheap peek."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as data:
            return data[name] if isinstance(data, np.lib.npyio.NpzFile) and name in data.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def config_to_array(config: dict) -> np.ndarray:
    """A JSON string stored as a 0-d unicode array, so it round-trips through np.savez without pickle."""
    return np.array(json.dumps(config, sort_keys=True))


def array_to_config(a, source="the file") -> dict:
    """The dict stored by :func:`config_to_array`; ValueError naming ``source`` if it is not a JSON object."""
    try:
        config = json.loads(str(np.asarray(a)[()]))
    except (json.JSONDecodeError, TypeError, ValueError) as err:
        raise ValueError(f"the model config stored in {source} is not valid JSON ({err}); the file was not "
                         "written by unet_scratch or was edited by hand: save it again with "
                         "model.save_weights, or build the UNet yourself and call model.load_weights") from err
    if not isinstance(config, dict):
        raise ValueError(f"the model config stored in {source} is not valid JSON object (got "
                         f"{type(config).__name__}); save the weights again with model.save_weights")
    return config


def is_disk_full(err: BaseException) -> bool:
    """True for the OSErrors of a full disk or quota."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1))
