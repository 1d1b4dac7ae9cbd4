"""Temporary files of runs onto an output: the ones killed runs left behind, and the lock a live run holds.

GDAL creates them: every file call here goes through ``os_path``, the name GDAL used (under a non-UTF-8 locale
Python's own encoding of a name with "Ü" is another file)."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import threading
from collections.abc import Callable, Iterable, Iterator

from ..gdalutil import gdal_str, os_path

try:                  # POSIX only: Windows refuses to delete an open file, which protects a live run's
    import fcntl  # temporary file there without a lock
except ImportError:   # pragma: no cover
    fcntl = None


def stale_partials(path: str) -> list[str]:
    """Temporary files that killed runs onto ``path`` left beside it (``.<name>.<hex>.partial`` and sidecars)."""
    folder, name = os.path.split(os.path.abspath(path))
    pattern = re.compile(rf"\.{re.escape(name)}\.[0-9a-f]{{8}}\.partial(\..+)?$")
    try:
        names = [gdal_str(f) for f in os.listdir(os_path(folder))]
    except OSError:
        return []
    return sorted(os.path.join(folder, f) for f in names if pattern.match(f))


def hold(path: str):
    """Keep a shared lock on a temporary file while this run writes it (released by closing the handle)."""
    if fcntl is None:
        return None
    f = open(os_path(path), "rb")
    fcntl.flock(f, fcntl.LOCK_SH)
    return f


def _in_use(partial: str) -> bool:
    """Whether a live run (this process or another) holds ``partial``; a killed run's lock is gone."""
    if fcntl is None or not os.path.exists(os_path(partial)):
        return False
    try:
        with open(os_path(partial), "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    return False


Signature = tuple[int, int, int]   # (inode, size, modification time in ns) of a file


def signature(path: str) -> Signature | None:
    """What identifies the file at ``path`` now (inode, size, modification time), None when there is none."""
    try:
        st = os.stat(os_path(path))
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def live_partials(path: str) -> list[str]:
    """Temporary files that runs writing to ``path`` right now hold (see ``hold``)."""
    return [p for p in stale_partials(path) if p.endswith(".partial") and _in_use(p)]


def remove_stale_partials(path: str) -> list[str]:
    """Delete the leftovers of killed runs onto ``path``; return the ones removed.

    A run writing to the same output right now keeps its file (it holds a lock on it).
    """
    removed = []
    for p in stale_partials(path):
        if _in_use(re.sub(r"\.partial\..+$", ".partial", p)):
            continue
        try:
            os.remove(os_path(p))
            removed.append(p)
        except OSError:
            pass   # another user's file or already gone: not ours to insist on
    return removed


def files_of(partial: str) -> list[str]:
    """``partial`` and the files named after it (its sidecars, a COG copy ``<partial>.cog``) that exist."""
    folder, name = os.path.split(partial)
    try:
        names = [gdal_str(f) for f in os.listdir(os_path(folder))]
    except OSError:
        return []
    return [os.path.join(folder, f) for f in names if f == name or f.startswith(name + ".")]


def total_size(files: Iterable[str]) -> int:
    """Bytes the existing ``files`` take."""
    size = 0
    for p in files:
        try:
            size += os.path.getsize(os_path(p))
        except OSError:
            pass
    return size


_TERM_FILES: list[Callable[[], Iterable[str]]] = []   # what the live writers of this process delete on SIGTERM


def _term_handler(signum: int, _frame) -> None:
    """SIGTERM during a write: delete the writers' temporary files (a folder with what it holds: model_core's
    working folders), then end by SIGTERM as without this handler (the default action: same exit status for
    ``timeout``, systemd and batch schedulers)."""
    for files in list(_TERM_FILES):
        for p in files():
            try:
                if os.path.isdir(os_path(p)) and not os.path.islink(os_path(p)):
                    shutil.rmtree(os_path(p), ignore_errors=True)
                else:
                    os.remove(os_path(p))
            except OSError:
                pass
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


@contextlib.contextmanager
def removed_on_sigterm(files: Callable[[], Iterable[str]]) -> Iterator[None]:
    """While inside, a SIGTERM deletes ``files()`` (files, or folders with their contents) before the process ends by
    it (a killed run's hidden partial, as large as the output, otherwise stayed until the next run onto that output).

    Python runs signal handlers on the main thread only, so this acts only there (qgis_process, scripts; not the
    desktop's background tasks, nor Dask's worker threads), and only while SIGTERM has its default action: a handler
    someone else installed is never replaced. The previous handler is back on leaving.
    """
    installed = False
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        try:
            signal.signal(signal.SIGTERM, _term_handler)
            installed = True
        except ValueError:   # not the main interpreter
            pass
    if installed or signal.getsignal(signal.SIGTERM) is _term_handler:   # nested: the outer one's handler serves
        _TERM_FILES.append(files)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            _TERM_FILES.remove(files)
        if installed and signal.getsignal(signal.SIGTERM) is _term_handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
