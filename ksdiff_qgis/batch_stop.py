"""Ctrl-C, SIGTERM and SIGHUP in the batch driver (``python -m ksdiff_qgis.batch``): stop cleanly, whatever comes
next.

The first SIGINT, SIGTERM or SIGHUP only asks the run to stop (:attr:`Stop.requested`) and says so at once: the driver
then cancels the scenes not started, closes the cluster, removes the temporary files of the scenes stopped halfway and
writes the summary. The handler never raises, so a second signal cannot break that cleanup (a KeyboardInterrupt
inside Dask's shutdown used to leave a partial file and drop a finished scene from the report); it only hurries
it: a local cluster's worker processes are killed at once instead of being given a few seconds to finish.
Dask-free: the plugin never imports it.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator

# SIGTERM: timeout, Slurm, systemd, docker stop; SIGHUP: the terminal closed (QA: exit 129, no line, no summary)
SIGNALS = (signal.SIGINT, signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))


def _say(text: str) -> None:
    """One line on stderr, written past Python's buffered stream: a print from a signal handler that interrupts
    another print to the same stream raises "reentrant call"."""
    lead = "\n" if sys.stderr.isatty() else ""   # past a progress bar drawn on this line
    with contextlib.suppress(OSError, ValueError):
        os.write(sys.stderr.fileno(), f"{lead}ksdiff batch: {text}\n".encode())


def label(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def _stopped_early(signum: int, frame) -> None:
    """A signal before ``Stop`` is in place (the engine's and Dask's imports: about 0.5 s): nothing has started, so
    one line and the signal's exit code (QA: a Ctrl-C then printed a 20-line KeyboardInterrupt traceback)."""
    _say(f"stopped by {label(signum)} before any scene started; nothing was written")
    os._exit(128 + signum)


def stop_early_when_run() -> None:
    """Install ``_stopped_early`` when ``python -m ksdiff_qgis.batch`` is starting (not in a process that imports
    the module: the tests, a script). Called from this module's import, which ``batch`` does before the engine's."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if getattr(spec, "name", None) == "ksdiff_qgis.batch" and threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, _stopped_early)


def _after_start(signum: int, previous):
    """What to restore when ``Stop`` ends: not ``_stopped_early`` (scenes may have run by then), Python's default."""
    if previous is not _stopped_early:
        return previous
    return signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL


class Stop:
    """Context manager that installs the handlers (main thread only; elsewhere it does nothing)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.local = True                                 # a local cluster: its workers are ours to stop
        self.worker_pids: Callable[[], Iterable[int | None]] = tuple
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended: 130 for Ctrl-C, 143 SIGTERM."""
        return 128 + int(self.signum or 0)

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    def __enter__(self) -> Stop:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: _after_start(s, signal.signal(s, self._handle)) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)

    def _handle(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = signum
            again = "Ctrl-C again" if signum == signal.SIGINT else f"another {label(signum)} or Ctrl-C"
            if self.local:
                _say(f"stopping ({label(signum)}): no new scene starts; the running ones get a few seconds to "
                     "finish, then the temporary files of those stopped halfway are removed and the summary is "
                     f"written ({again} stops them at once; the cleanup still runs)")
            else:
                _say(f"stopping ({label(signum)}): no new scene starts (the cluster's workers finish the scenes "
                     "they are running); the summary follows")
            return
        killed = self._kill_workers() if self.local else 0
        if killed:
            _say(f"stopping the running scenes now ({killed} worker process(es) killed); cleaning up")
        else:
            _say("still stopping: cleaning up, the summary follows")

    def _kill_workers(self) -> int:
        """SIGKILL the local cluster's worker processes (their temporary files lose their lock and are removed)."""
        killed = 0
        try:
            pids = [p for p in self.worker_pids() if p]
        except RuntimeError:   # the cluster's worker table changed meanwhile: the cleanup goes on anyway
            return 0
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))   # Windows: no SIGKILL
                killed += 1
        return killed


@contextlib.contextmanager
def sigint_held() -> Iterator[None]:
    """While local worker processes start: they must not get Ctrl-C (a terminal sends it to the whole process group;
    each worker printed a traceback), which this process alone handles, without losing one pressed meanwhile.

    SIGINT is blocked on this thread while the cluster starts. Threads started meanwhile inherit that mask: Dask's
    event loop and the threads that spawn worker processes (also the ones a nanny restarts later), so every worker
    starts with SIGINT blocked and never receives it. This process still does: the kernel hands it to a thread that
    does not block it, and Python runs the handler on the main thread. (Ignoring SIGINT meanwhile, as before,
    lost a Ctrl-C pressed during the start.) Without ``pthread_sigmask`` (Windows): ignored meanwhile.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if not hasattr(signal, "pthread_sigmask"):
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
        return
    # multiprocessing starts its resource tracker with SIGINT blocked and then unblocks it on the calling thread,
    # which would undo the block here before Dask's threads start: start it first
    # SIGHUP (a closed terminal: the whole group) before it: it unblocks only SIGINT and SIGTERM, so the tracker keeps
    # SIGHUP blocked (QA: killed by it, its successor printed a KeyError traceback per shared-memory name)
    hup = {signal.SIGHUP} if hasattr(signal, "SIGHUP") else set()
    signal.pthread_sigmask(signal.SIG_BLOCK, hup)
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    held = {signal.SIGINT, *hup}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


stop_early_when_run()
