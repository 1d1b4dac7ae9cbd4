"""Temporary files of runs onto an output: the ones killed runs left behind, and the lock a live run holds.

GDAL creates them: every file call here goes through ``os_path``, the name GDAL used (under a non-UTF-8 locale
Python's own encoding of a name with "Ü" is another file)."""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from osgeo import gdal

from ..errors import one_line
from ..gdalutil import gdal_str, gdal_text, os_path

try:                  # POSIX only: Windows refuses to delete an open file, which protects a live run's
    import fcntl  # temporary file there without a lock
except ImportError:   # pragma: no cover
    fcntl = None

# files kept beside a raster that describe its pixels: GDAL's/QGIS's statistics, overviews and mask, and the batch's
# record of what produced it (engine/scenes.py SIDECAR_SUFFIX; a batch writes its new one after the commit)
SIDECARS = (".aux.xml", ".ovr", ".msk", ".ksdiff.json")
# what the writer names after its ``.partial`` (writer.py, outputs.CogWriter): its sidecars, the COG copy and that
# copy's sidecars, and the COG driver's overview temporaries; a leftover with any other suffix is not ours
WRITER_SUFFIXES = (*SIDECARS, ".cog", *(".cog" + s for s in SIDECARS), ".cog.ovr.tmp", ".cog.msk.ovr.tmp")
# a temporary file of a run onto any output (``.<name>.tif.<8 hex>.partial`` + one suffix): the greedy name makes the
# base end at the LAST ``.<hex>.partial`` (an output named ``scene.partial.tif`` keeps its own base)
LEFTOVER_NAME = re.compile(r"(\..+\.(?i:tiff?)\.[0-9a-f]{8}\.partial)(" +
                           "|".join(re.escape(s) for s in WRITER_SUFFIXES) + ")?", re.DOTALL)
STALE_AGE = 3600.0   # seconds: another output's leftovers younger than this may be a live run's (no lock yet)
# flock errors that say this file system has no working locks (NFSv4 on a write-only handle, Lustre, FUSE): with
# them nothing tells a live run's file from a killed one's, so other outputs' files are not swept at all
_NO_LOCKS = {errno.ENOSYS, errno.ENOLCK, errno.EBADF, errno.EOPNOTSUPP, errno.EINVAL}


def _own_leftover(name: str) -> re.Pattern:
    """The temporary files of runs onto output ``name``: group 1 the ``.partial`` a sidecar belongs to, anchored on
    the output's name (QA: an output named scene.partial.tif made the first ".partial." the base, which no lock held,
    and a live run's file was deleted)."""
    return re.compile(rf"(\.{re.escape(name)}\.[0-9a-f]{{8}}\.partial)(\..+)?$", re.DOTALL)


def stale_partials(path: str) -> list[str]:
    """Temporary files that killed runs onto ``path`` left beside it (``.<name>.<hex>.partial`` and sidecars)."""
    folder, name = os.path.split(os.path.abspath(path))
    pattern = _own_leftover(name)
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


def _probe_fd(path: str) -> int:
    """A descriptor to test ``path``'s lock with: opened without following a link or blocking (a FIFO never hangs
    the run), for writing where allowed, since NFSv4 turns an exclusive flock into a write lock, which a read-only
    descriptor may not take (EBADF: a killed run's leftover read as held forever); read-only where writing is not
    allowed. Raises OSError when neither opens."""
    flags = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        return os.open(os_path(path), os.O_RDWR | flags)
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ETXTBSY):
            raise
    return os.open(os_path(path), os.O_RDONLY | flags)


def _in_use(partial: str) -> bool:
    """Whether a live run (this process or another) holds ``partial``; a killed run's lock is gone. Opened without
    blocking or following a link (QA: a FIFO of that name hung every run onto the output); not a regular file: not
    a run's."""
    if fcntl is None:
        return False
    try:
        fd = _probe_fd(partial)
    except OSError:
        return False   # gone (or a link): nothing a run holds
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
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
    folder, name = os.path.split(os.path.abspath(path))
    base = _own_leftover(name)
    for p in stale_partials(path):
        m = base.match(os.path.basename(p))
        if m is None or _in_use(os.path.join(folder, m.group(1))):
            continue
        try:
            os.remove(os_path(p))
            removed.append(p)
        except OSError:
            pass   # another user's file or already gone: not ours to insist on
    return removed


class _LocksUnavailable(Exception):
    """flock does not work on this file system (``_NO_LOCKS``)."""


def _ours_and_old(path: str, before: float) -> bool:
    """A regular file (not a link, FIFO or device) of this user, last changed before ``before``."""
    try:
        st = os.lstat(os_path(path))
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and st.st_mtime < before


@contextlib.contextmanager
def _exclusive(path: str) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` while inside (True), or False when a live run holds it or it cannot be
    opened. Opened without following a link and without blocking (a FIFO never hangs the run)."""
    try:
        fd = _probe_fd(path)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError as e:
            if e.errno in _NO_LOCKS:
                raise _LocksUnavailable() from e
            held = False   # EWOULDBLOCK: a live run's
        yield held
    finally:
        os.close(fd)


def _remove(files: Iterable[str]) -> list[str]:
    """Delete ``files``; return the ones removed."""
    removed = []
    for p in files:
        try:
            os.remove(os_path(p))
            removed.append(p)
        except OSError:
            pass   # already gone: not ours to insist on
    return removed


def sweep_folder(folder: str) -> list[str]:
    """Delete the leftovers killed runs onto any output left in ``folder``; return the ones removed.

    Only when every check holds (QA123: a looser sweep deleted live runs' files): the name is the writer's own
    (``LEFTOVER_NAME``), each file of the family is a regular file of this user older than ``STALE_AGE``, and the
    ``.partial`` is deleted with its sidecars under its exclusive lock (a live run holds a shared one). A sidecar
    without its ``.partial`` goes only when old and unlocked. Without working locks (Windows, ``_NO_LOCKS``)
    nothing is swept.
    """
    if fcntl is None or not hasattr(os, "getuid"):
        return []
    try:
        names = [gdal_str(f) for f in os.listdir(os_path(folder))]
    except OSError:
        return []
    families: dict[str, list[str]] = {}
    for name in names:
        m = LEFTOVER_NAME.fullmatch(name)
        if m:
            families.setdefault(os.path.join(folder, m.group(1)), []).append(os.path.join(folder, name))
    before = time.time() - STALE_AGE
    removed: list[str] = []
    try:
        for base, files in sorted(families.items()):
            if not all(_ours_and_old(p, before) for p in files):
                continue
            # an orphan sidecar is its own guard: its lock checks that locks work here and that no run holds it
            for guard, group in ([(base, files)] if base in files else [(p, [p]) for p in files]):
                with _exclusive(guard) as held:
                    if held and all(_ours_and_old(p, before) for p in group):
                        removed += _remove(sorted(group, key=lambda p: p == base))   # the .partial last
    except _LocksUnavailable:
        pass
    return sorted(removed)


def shown_path(path: str) -> str:
    """``path`` fit for a log line or a JSON report: bytes that are not UTF-8 (a name from ``os.listdir``) replaced
    (QA123: a lone surrogate crashed the batch's report)."""
    return one_line(gdal_text(path))


def leftover_line(path: str) -> str:
    """What a run says about a killed run's temporary file it removed."""
    return f"removed {shown_path(path)}, left by an interrupted earlier run"


def files_of(partial: str) -> list[str]:
    """``partial`` and the files named after it (its sidecars, a COG copy ``<partial>.cog``) that exist."""
    folder, name = os.path.split(partial)
    try:
        names = [gdal_str(f) for f in os.listdir(os_path(folder))]
    except OSError:
        return []
    return [os.path.join(folder, f) for f in names if f == name or f.startswith(name + ".")]


def gdal_temp_files(partial: str) -> list[str]:
    """GDAL's temporary files of this process's COG copy of ``partial`` (``<partial>.cog``) that exist in CPL_TMPDIR.

    With CPL_TMPDIR set, GDAL's COG driver writes its overviews (and a mask's) there, named by
    ``CPLGenerateTempFilename`` after the copy's name without its last extension: ``<partial's name>_<pid>_<n>.ovr.tmp``
    (``.msk.ovr.tmp``), n counting GDAL's temporary names in the process. ``files_of`` looks beside the output only
    (QA139: a SIGTERM during the overviews left that file in CPL_TMPDIR)."""
    folder = gdal.GetConfigOption("CPL_TMPDIR")
    if not folder:
        return []
    folder = os.path.abspath(folder)
    own = re.compile(rf"{re.escape(os.path.basename(partial))}_{os.getpid()}_[0-9]+\.(msk\.)?ovr\.tmp", re.DOTALL)
    try:
        names = [gdal_str(f) for f in os.listdir(os_path(folder))]
    except OSError:
        return []
    return [os.path.join(folder, f) for f in names if own.fullmatch(f)]


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
