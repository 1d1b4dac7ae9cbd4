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


# the writer's temporary files: ``.<output name>.<8 hex>.partial`` and what is named after it (``.partial.cog``,
# ``.partial.aux.xml``, ``.partial.cog.ovr.tmp``); nothing else is ever touched
ANY_PARTIAL = r"\..+\.[0-9a-f]{8}\.partial(\..+)?"

LEFTOVER = "left in the output folder by an interrupted earlier run"   # how a removed one is said (log, batch)


def _matching(folder: str, pattern: str) -> list[str]:
    """The files in ``folder`` whose whole name matches ``pattern``, sorted."""
    try:
        names = [gdal_str(f) for f in os.listdir(os_path(folder))]
    except OSError:
        return []
    return sorted(os.path.join(folder, f) for f in names if re.fullmatch(pattern, f, re.DOTALL))


def stale_partials(path: str) -> list[str]:
    """Temporary files that killed runs onto ``path`` left beside it (``.<name>.<hex>.partial`` and sidecars)."""
    folder, name = os.path.split(os.path.abspath(path))
    return _matching(folder, rf"\.{re.escape(name)}\.[0-9a-f]{{8}}\.partial(\..+)?")


def folder_partials(folder: str) -> list[str]:
    """The temporary files of runs onto any output in ``folder`` (``ANY_PARTIAL``), live or left by killed runs."""
    return _matching(folder, ANY_PARTIAL)


def create_held(path: str):
    """Create the empty temporary file ``path`` with this run's shared lock already on it (GDAL's Create then
    truncates that same file): a sweep by another run never sees it unlocked. None without ``fcntl``."""
    if fcntl is None:
        return None
    while True:
        f = open(os_path(path), "ab")
        fcntl.flock(f, fcntl.LOCK_SH)   # waits while a sweep holds its exclusive lock to delete the file
        try:
            if os.stat(os_path(path)).st_ino == os.fstat(f.fileno()).st_ino:
                return f
        except OSError:
            pass
        f.close()   # a sweep deleted the file between our open and our lock: make it again


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
    """Temporary files that runs writing to ``path`` right now hold (see ``create_held``)."""
    return [p for p in stale_partials(path) if p.endswith(".partial") and _in_use(p)]


def _remove_unheld(files: list[str]) -> list[str]:
    """Delete those of ``files`` (temporary files and their sidecars) whose ``.partial`` no live run holds; return the
    ones removed. The ``.partial`` is deleted under an exclusive lock, so a run creating it (``create_held``) waits
    and makes a new one rather than writing into a deleted file."""
    removed = []
    for base in sorted({re.sub(r"\.partial\..+$", ".partial", p, flags=re.DOTALL) for p in files}):
        guard = None
        if fcntl is not None and os.path.exists(os_path(base)):
            try:
                guard = open(os_path(base), "rb")
                fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:   # a live run holds it (or it cannot be read: not ours to insist on)
                if guard is not None:
                    guard.close()
                continue
        try:
            for p in [f for f in files if f == base or f.startswith(base + ".")]:
                try:
                    os.remove(os_path(p))
                    removed.append(p)
                except OSError:
                    pass   # another user's file or already gone: not ours to insist on
        finally:
            if guard is not None:
                guard.close()
    return sorted(removed)


def remove_stale_partials(path: str) -> list[str]:
    """Delete the leftovers of killed runs onto ``path``; return the ones removed.

    A run writing to the same output right now keeps its file (it holds a lock on it).
    """
    return _remove_unheld(stale_partials(path))


def remove_stale_in_folder(folder: str) -> list[str]:
    """Delete the leftovers of killed runs onto any output in ``folder`` (``folder_partials``); return the ones
    removed. Live runs' files stay: they hold a lock on them (on Windows, the OS refuses to delete an open file)."""
    return _remove_unheld(folder_partials(folder))


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
