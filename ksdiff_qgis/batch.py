"""Batch pansharpening of a scene list on a Dask cluster: ``python -m ksdiff_qgis.batch SCENES.csv``.

Without ``--scheduler`` a local cluster of ``--workers`` processes runs on this machine; with it, the
same command uses an existing cluster (``dask scheduler`` + ``dask worker``, Kubernetes, HPC, ...).
One task per scene runs ``engine.scenes.run_scene``, i.e. ``engine.pipeline.pansharpen`` with the
parameters the Processing algorithm would get. Options and the scene list are checked before any worker starts;
Ctrl-C, SIGTERM and SIGHUP stop the run cleanly (``batch_stop``). Dask is imported only inside the functions below: the
plugin inside QGIS never imports this module, and importing it does not import Dask either.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .batch_stop import Stop, label, sigint_held
from .engine import memory, threadlimits
from .engine.errors import disk_full, one_line, quoted
from .engine.gdalutil import from_os
from .engine.raster_io.partials import leftover_line, shown_path, stale_partials
from .engine.scene_outputs import case_warnings
from .engine.scenes import (
    COUNT_KEYS,
    Scene,
    SceneListError,
    base_record,
    option_values,
    read_record,
    read_scenes,
    remove_partials,
    run_scene,
)
from .engine.threadlimits import usable_cores

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# stopped by a signal: 128 + its number, as a shell reports a process that signal ended
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM   # 130 (Ctrl-C), 143 (SIGTERM)
MAX_WORKERS_PER_CORE = 2   # more single-threaded scene processes than this only queue for the cores
# RAM a local worker process needs at least: 104 MB idle, 228 MB after a 512² KSDiff scene (ONNX Runtime session,
# GDAL caches), plus the smallest tile's working memory
WORKER_MB = 256
# processes and threads of a local cluster, which ``ulimit -u`` counts (a cluster past it hung starting, or died with
# "Nanny failed to start"): measured peaks of a 2-scene batch of the WV2 fixture, 14, 20 and 32 with 1, 2 and 4
# workers (12, 18 and 30 beyond the 2 threads this process had): its scheduler and helpers, then each worker's nanny
# threads here, its own process and threads, and a sequential scene's
CLUSTER_THREADS, WORKER_THREADS = 6, 6
CONNECT_TIMEOUT = 10   # seconds to reach a --scheduler (Dask's own default, 30 s, looked like a hang)
PROGRESS_SECONDS = 60  # without a terminal: a progress line at least this often, and at every tenth of the scenes
# a local cluster left without any worker this long fails its unfinished scenes: a worker that met a MemoryError in
# its heartbeat shut down for good ("Scheduler was unaware of this worker"), nanny and all, and the run waited
# forever at "running: 1/1" (QA). A nanny restarts a killed worker within a few seconds.
NO_WORKER_SECONDS = 30
WATCH_SECONDS = 2      # how often the driver asks the scheduler how many workers it has


class UsageError(Exception):
    """The command line cannot run (exit 2, one line)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m ksdiff_qgis.batch",
        description="Pansharpen every scene of a CSV list (header pan,ms,sensor,method,output; further "
                    "columns: any ksdiff:pansharpen parameter, e.g. tile_size, overlap, device, model, threads) "
                    "on a Dask cluster.",
        epilog="Ctrl-C, SIGTERM or SIGHUP stops the run cleanly (temporary files removed, summary written). Exit "
               "codes: 0 done, 1 a scene failed, 2 unusable command line or list, 130 stopped by Ctrl-C, 143 by "
               "SIGTERM, 129 by SIGHUP.")
    p.add_argument("scenes", help="CSV scene list; relative paths are relative to its folder")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786) or its scheduler "
                                       "file (.json); default: start a local cluster")
    p.add_argument("--workers", type=int, default=0,
                   help=f"local worker processes (default: one per core; at most {MAX_WORKERS_PER_CORE} per core and "
                        f"one per {WORKER_MB} MB of available RAM; ignored with --scheduler)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU cores per scene, for the engine's tile workers and ONNX Runtime threads "
                        "(default: a worker's cores / the scenes it runs at once; at most a host's cores)")
    p.add_argument("--report", help="write one JSON line per scene (and a final summary line) to this file")
    p.add_argument("--retries", type=int, default=2,
                   help="retries of a scene that fails for other reasons than bad input, a full disk or too little "
                        "memory; also the redos of a scene whose local worker died (default 2)")
    p.add_argument("--force", action="store_true", help="redo scenes whose output is up to date")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    for key in ("sensor", "device"):
        p.add_argument(f"--{key}", help=f"{key} for rows that leave it empty (default: the engine's default)")
    p.add_argument("--method", default="auto", help="method for rows that leave it empty (default: auto, as in "
                                                    "QGIS: KSDiff checked on each scene)")
    p.add_argument("--tile-size", dest="tile_size", type=int, help="tile size for rows that leave it empty")
    p.add_argument("--overlap", type=int, help="tile overlap for rows that leave it empty")
    return p.parse_args(argv)


def check_numbers(args: argparse.Namespace) -> None:
    """UsageError for a count out of range, before any worker starts (``--workers -1`` hung forever: Dask waited
    for workers that never started; ``--threads 1000`` ran 1000 tile workers per scene)."""
    if args.workers < 0:
        raise UsageError("--workers must be 0 (one per core) or more")
    if args.threads < 0:
        raise UsageError("--threads must be 0 (a worker's share of the cores) or more")
    if args.retries < 0:
        raise UsageError("--retries must be 0 (no retry) or more")
    if args.scheduler is None:   # a cluster's cores are checked once connected (``check_threads``)
        check_threads(args.threads, usable_cores(), "this machine")


def check_threads(threads: int, cores: int, where: str, scenes: Iterable[Scene] = ()) -> None:
    """UsageError for ``--threads`` or a row's ``threads``/``workers`` cell above the ``cores`` of ``where`` (a row's
    64 threads on 2 cores ran 64 of each per scene)."""
    if threads > cores:
        raise UsageError(f"--threads {threads} is more than the {cores} core(s) of {where}: give at most {cores}, "
                         "or 0 (each scene gets its worker's share)")
    for scene in scenes:
        for key in COUNT_KEYS:
            if (scene.kwargs.get(key) or 0) > cores:
                raise UsageError(f"line {scene.line}: {key} {scene.kwargs[key]} is more than the {cores} core(s) of "
                                 f"{where}: give at most {cores}, or leave the cell empty (the scene's share)")


# file descriptors a local cluster needs (its scheduler's sockets and pipes, each worker's nanny, process and
# connections). Measured (ulimit -n, 8 WV2 scenes): 1 worker started at 32, not 28; 2 at 44 (40 flooded the log
# with 390,000 lines of "Too many open files", 32-36 died with "Nanny failed to start"); 3 at 56, not 48
FILES_CLUSTER, FILES_PER_WORKER = 20, 12


def open_file_limit() -> int | None:
    """This process's soft limit on open files (``ulimit -n``), or None without one (Windows, unlimited)."""
    try:
        import resource  # not on Windows
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, AttributeError, ValueError, OSError):
        return None
    return None if soft == resource.RLIM_INFINITY or soft < 0 else soft


def check_open_files(workers: int, limit: int | None) -> None:
    """UsageError when ``limit`` (``open_file_limit``) leaves too few files for a local cluster of ``workers``."""
    if limit is None or limit >= FILES_CLUSTER + FILES_PER_WORKER * workers:
        return
    fits = (limit - FILES_CLUSTER) // FILES_PER_WORKER
    need = FILES_CLUSTER + FILES_PER_WORKER * workers
    instead = f" or use --workers {fits}" if fits >= 1 else ""
    raise UsageError(f"open-file limit {limit} too low for {workers} worker(s) (they need about {need}): raise "
                     f"ulimit -n{instead}")


def local_workers(requested: int) -> tuple[int, str | None]:
    """The local cluster's worker processes for ``--workers`` (0: one per core) and, when that is more than this
    machine can run (``MAX_WORKERS_PER_CORE`` per core, ``WORKER_MB`` of available RAM each), the number it can and
    a warning saying why (``--workers 1000`` on 2 cores started hundreds of processes)."""
    cores = usable_cores()
    wanted = requested or cores
    check_open_files(wanted, open_file_limit())   # past it, Dask's cluster died or flooded the log (QA)
    free = memory.available_mb()
    by_cores = MAX_WORKERS_PER_CORE * cores
    by_memory = max(1, int(free // WORKER_MB)) if free else by_cores
    room = threadlimits.thread_room()
    by_threads = local_thread_room(room)
    if wanted <= min(by_cores, by_memory, by_threads or by_cores):
        return wanted, None
    asked = f"--workers {requested}" if requested else f"one worker per core ({cores})"
    if by_threads is not None and by_threads < min(by_cores, by_memory):
        return by_threads, (f"{asked} would start more processes and threads than the limit allows ({room[1]}): "
                            f"using {by_threads} (a local cluster starts about {CLUSTER_THREADS}, and "
                            f"{WORKER_THREADS} per worker)")
    if by_cores <= by_memory:
        return by_cores, (f"{asked} is more than this machine's {cores} core(s) can use: using {by_cores} "
                          f"(at most {MAX_WORKERS_PER_CORE} per core)")
    return by_memory, (f"{asked} would not fit in the {free:.0f} MB of available RAM: using {by_memory} "
                       f"(each needs about {WORKER_MB} MB)")


def local_thread_room(room: tuple[int, str] | None) -> int | None:
    """The local workers a thread limit (``threadlimits.thread_room``: ``room``) leaves room for, or None without
    one; UsageError when not even one fits (the cluster hung starting, or died with "Nanny failed to start")."""
    if room is None:
        return None
    workers = (room[0] - threadlimits.RESERVE - CLUSTER_THREADS) // WORKER_THREADS
    if workers < 1:
        raise UsageError(f"a local cluster needs about {CLUSTER_THREADS + WORKER_THREADS} processes and threads for "
                         f"one worker, and {max(0, room[0])} more can start under {room[1]}: raise the limit "
                         "(ulimit -u, or the container's pids limit), close other programs of this user, or give "
                         "--scheduler")
    return workers


def local_thread_share(workers: int) -> int | None:
    """Threads each scene of a local cluster of ``workers`` may start for itself under a thread limit (what the
    cluster leaves, shared out): scenes running at once each saw the whole room and took it, and ONNX Runtime hangs
    past the limit. None without a limit."""
    room = threadlimits.thread_room()
    if room is None:
        return None
    return max(0, (room[0] - threadlimits.RESERVE - CLUSTER_THREADS - WORKER_THREADS * workers) // max(1, workers))


def defaults_from(args: argparse.Namespace) -> dict[str, Any]:
    """Engine keywords given on the command line (a CSV cell overrides them). ``--sensor``, ``--method`` and
    ``--device`` are case-insensitive like the list's cells; UsageError for a value the engine does not know, before
    any scene starts (QA: ``--sensor WV2`` failed every scene of the run alike)."""
    keys = ("sensor", "method", "device", "tile_size", "overlap")
    defaults = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    for key in ("sensor", "method", "device"):
        if key in defaults:
            value = defaults[key].strip().lower()
            known = option_values(key)
            if value not in known:
                raise UsageError(f"--{key} {quoted(one_line(defaults[key]))} is not known: give one of "
                                 f"{', '.join(known)} (upper or lower case)")
            defaults[key] = value
    return defaults


# ------------------------------------------------------------------------- cluster
def scheduler_address(scheduler: str) -> str:
    """The address to connect to: ``scheduler`` itself, or the one in the scheduler file it names."""
    if "://" in scheduler or not (scheduler.endswith(".json") or os.path.isfile(scheduler)):
        return scheduler
    if not os.path.isfile(scheduler):
        raise UsageError(f"the scheduler file {scheduler} does not exist: give the file the scheduler writes "
                         "(dask scheduler --scheduler-file FILE) or its address (tcp://host:8786)")
    try:
        with open(scheduler, encoding="utf-8") as f:
            return str(json.load(f)["address"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{scheduler} is not a Dask scheduler file (JSON with an 'address'): "
                         f"{type(e).__name__}: {e}") from None


@contextlib.contextmanager
def connect(scheduler: str | None, workers: int, stop: Stop | None = None, allowed_failures: int = 2) -> Iterator:
    """A Dask client: to ``scheduler`` if given, else to a new local cluster of ``workers`` processes, where a scene
    whose worker died is run again at most ``allowed_failures`` times (a remote scheduler keeps its own setting).

    UsageError when the scheduler cannot be reached (after ``CONNECT_TIMEOUT`` s), in one line.
    """
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler:
        address = scheduler_address(scheduler)
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except Exception as e:   # OSError (timed out, refused), ValueError (no port, unknown scheme), ...
            where = address if address == scheduler else f"{address} (from {scheduler})"
            reason = " ".join(str(e).split()) or type(e).__name__
            raise UsageError(f"cannot reach the Dask scheduler at {where}: {reason}; check that it runs and the "
                             "address, or leave out --scheduler for a local cluster") from None
        with client:
            yield client
        return
    workers = workers or usable_cores()
    # one scene at a time per worker process: a scene's parallelism comes from its own threads (tile
    # workers, ONNX Runtime), and a process caches one ONNX session per model for all the scenes it runs.
    # The workers ignore Ctrl-C (``sigint_held``): this process alone stops the run and closes the cluster.
    # No dashboard: dashboard_address=None alone still served Dask's HTTP routes on port 8787 (a second run
    # warned "Port 8787 is already in use"); here they go to a free port on this host only.
    # a scene whose worker process dies (OOM killer, a crash) is run again on a fresh worker at most ``retries``
    # times, then fails with KilledWorker: Dask's own default (3) ran a scene that kills its worker four times
    with sigint_held(), dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
    if stop is not None:   # a second Ctrl-C kills them (read then: a nanny restarts a killed worker)
        stop.worker_pids = lambda: [getattr(n, "pid", None) for n in list(cluster.workers.values())]
    with cluster, Client(cluster) as client:
        client.run(quiet_dask_shutdown)   # idle workers too (a restarted one is quieted by its first scene)
        yield client


def threads_per_worker(client) -> dict[str, int]:
    """Threads per scene for each worker so that the scenes running at once on a host fit its cores."""
    info = client.scheduler_info()["workers"]
    cores = client.run(usable_cores)
    slots: dict[str, int] = {}
    for w in info.values():
        slots[w["host"]] = slots.get(w["host"], 0) + w["nthreads"]
    return {addr: max(1, cores.get(addr, 1) // slots[w["host"]]) for addr, w in info.items()}


def share_memory(memory_limit: int | None, slots: int) -> None:
    """Limit each scene to its share of the worker's memory limit (``memory.set_worker_share``).

    The engine's memory guard otherwise sizes tiles on half the host's free RAM in every worker process
    at once; Dask would then restart a worker that outgrows its limit. A user's ``KSDIFF_MAX_MEMORY_MB`` still wins,
    and a tighter container or ``ulimit -v`` still decides and is named: the share is no longer written into that
    variable, whose name the messages then gave as if the user had set it.
    """
    if not memory_limit:
        memory.set_worker_share(None)
        return
    limit_mb = memory_limit / 2**20
    share = memory.SAFE_SHARE * limit_mb / max(1, slots)
    at_once = f", divided by the {slots} scenes it runs at once" if slots > 1 else ""
    memory.set_worker_share(share, f"this worker's share of the batch's memory: half of its {limit_mb:.0f} MB Dask "
                                   f"memory limit{at_once}")


def quiet_gdal() -> None:
    """Keep GDAL's own error lines off this worker's console: every failure a scene meets reaches its record and
    the summary as one message naming the file (GDAL's raw "ERROR 1: TIFFReadEncodedStrip…" lines came first).
    Process-wide on purpose: the engine reads tiles on its own threads."""
    from osgeo import gdal

    gdal.SetErrorHandler("CPLQuietErrorHandler")


def quiet_dask_shutdown() -> None:
    """Keep a local cluster's worker processes from printing Dask's own shutdown noise on the user's console: when
    Ctrl-C closes the cluster, a worker still running logged "Failed to communicate with scheduler during heartbeat"
    with a 30-line traceback, and "Async instruction … ended with CancelledError" (QA). A scene's own failures reach
    its record and the summary, not these loggers."""
    import logging

    for name in ("distributed.worker", "distributed.core", "distributed.comm", "distributed.nanny"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def scene_task(scene: Scene, threads: int, threads_by_worker: dict[str, int], force: bool,
               local: bool = False, thread_share: int | None = None) -> dict:
    """The Dask task of one scene: pick this worker's thread count (unless given), run the scene (``local``: on
    this run's own local cluster, whose workers' Dask logging is ours to quiet; ``thread_share``: the threads the
    scene may start under a thread limit, ``local_thread_share``)."""
    from dask.distributed import get_worker

    if local:
        quiet_dask_shutdown()
    worker = get_worker()
    # a worker that joined after the plan (autoscaling) divides its own cores by its own slots
    threads = threads or threads_by_worker.get(worker.address) or max(1, usable_cores() // worker.state.nthreads)
    share_memory(worker.memory_manager.memory_limit, worker.state.nthreads)
    threadlimits.set_share(thread_share, "this worker's share of the threads the limit leaves the batch's local "
                                         "cluster")
    quiet_gdal()
    return run_scene(scene, cores=threads, force=force, worker=worker.address, stopped=task_stopped(worker))


def task_stopped(worker) -> Callable[[], bool]:
    """Whether the batch no longer wants the scene this worker thread runs: its task was cancelled (a stop cancels
    every scene) or the worker is closing (a local cluster closed after a stop)."""
    from distributed.utils import thread_state

    key = getattr(thread_state, "key", None)

    def stopped() -> bool:
        if worker.status.name not in ("running", "paused"):
            return True
        task = worker.state.tasks.get(key)
        return task is None or task.state in ("cancelled", "released", "forgotten")

    return stopped


def submit(client, scenes: list[Scene], threads: int, retries: int, force: bool, local: bool = False,
           thread_share: int | None = None) -> dict:
    """One future per scene (retried ``retries`` times on errors other than bad input)."""
    plan = {} if threads > 0 else threads_per_worker(client)
    stamp = f"{time.time_ns():x}"
    return {client.submit(scene_task, s, threads, plan, force, local, thread_share, retries=retries, pure=False,
                          key=f"ksdiff-scene-{s.line}-{stamp}"): s for s in scenes}


# ------------------------------------------------------------------------- results
class Report:
    """The ``--report`` file: each record a whole JSON line, written and flushed in one go.

    A write that fails (a full disk, a quota, an I/O error) truncates the file back to where that record began, so
    every line in it stays valid JSON, prints one line saying so, and the run goes on without the report: the
    outputs and their ``.ksdiff.json`` records are elsewhere and unaffected (QA: the OSError of ``flush`` killed the
    run with a 30-line traceback, cancelled the running scenes, printed no summary and cut the last line).
    """

    def __init__(self, path: str):
        self.path = path
        self.file = open(path, "wb", buffering=0)   # unbuffered: nothing of a failed record lingers in a buffer
        self.lines = 0
        self.lost: str | None = None   # why the report stopped, once it did

    def add(self, record: dict) -> None:
        """Append ``record`` as one JSON line, or nothing once the report has stopped."""
        if self.lost is not None:
            return
        try:
            text = json.dumps(record, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:   # a lone surrogate (a non-UTF-8 name) missed on its way: escaped, not a crash
            text = json.dumps(record).encode("ascii")
        data = memoryview(text + b"\n")
        start = self.file.tell()
        try:
            while data:
                data = data[self.file.write(data):]
        except OSError as e:
            with contextlib.suppress(OSError):   # only whole records stay
                self.file.truncate(start)
                self.file.seek(start)
            self.lost = self.failure(e)
            print(f"ksdiff batch: {self.lost}; the run goes on without it (the outputs and their .ksdiff.json "
                  "records are unaffected)", file=sys.stderr, flush=True)
            return
        self.lines += 1

    def failure(self, error: OSError) -> str:
        """One line: which file, why, how much room is left, what it keeps."""
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            st = os.statvfs(folder)
            free = f", {st.f_bavail * st.f_frsize} bytes free there"
        except (OSError, AttributeError):   # statvfs: not on Windows
            free = ""
        why = "disk full" if disk_full(error) else (error.strerror or str(error))
        return (f"the report file {quoted(self.path)} cannot be written ({why}{free}): it keeps its first "
                f"{self.lines} line(s), each a whole record")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()

    def __enter__(self) -> Report:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def add_line(report: Report | None, record: dict) -> None:
    if report is not None:
        report.add(record)


def outcome(future, scene: Scene) -> dict:
    """The report record of a finished future; a task that still failed after its retries becomes 'failed'."""
    if future.status == "finished":
        return future.result()
    warnings: list[str] = []
    try:
        exc = future.exception()
        error = died_message(exc) if type(exc).__name__ == "KilledWorker" else error_line(exc)
        warnings = list(getattr(exc, "ksdiff_warnings", None) or [])   # said before it failed (``run_scene``)
    except Exception as e:   # cancelled futures raise here
        error = error_line(e)
    return {**base_record(scene), "status": "failed", "error": error, "warnings": warnings}


# a run of line breaks (\r\n, \n, \r) and the spaces or tabs around it: Dask indents its wrapped lines
_LINE_BREAKS = re.compile(r"[ \t]*(?:\r\n|\n|\r)+[ \t]*")


def error_line(exc: BaseException) -> str:
    """An unexpected exception as one line: Dask's wrap its text over several (the console showed them as literal
    \\n escapes, as ``one_line`` escapes a line break). Only the line breaks (with the blanks around them) become one
    space: other whitespace stays, e.g. two spaces in a path the user copies from the report (QA136)."""
    return f"{type(exc).__name__}: {_LINE_BREAKS.sub(' ', str(exc).strip())}"


def died_message(exc: BaseException | None = None) -> str:
    """A scene whose worker process died under it (the scheduler's KilledWorker, or no worker left at all)."""
    return ("the worker process running this scene died" + (" each time it ran" if exc is not None else "")
            + ": most often it ran out of memory (the system killed it, or Dask's memory limit restarted it); "
            f"give it more room with a smaller --tile-size, fewer --workers or {memory.ENV_LIMIT}, then run again")


def fail_unfinished(futures: dict, done: set, records: list[dict], report: Report | None,
                    progress: Progress) -> None:
    """The cluster has no worker left: the scenes not finished fail (their worker died) and the run ends."""
    for future, scene in futures.items():
        if future not in done and future.status != "finished":
            rec = {**base_record(scene), "status": "failed",
                   "error": died_message() + f" (the cluster had no worker left for {NO_WORKER_SECONDS} s)"}
            done.add(future)
            records.append(rec)
            add_line(report, rec)
            progress.update(rec)


class Progress:
    """Progress on stderr: tqdm's bar on a terminal; in a log file (no terminal) a plain line at every tenth of the
    scenes and at least every ``PROGRESS_SECONDS`` (tqdm's carriage-return updates made one huge line there)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.failed = total, 0, 0
        self.bar = None
        self.plain = enabled and not sys.stderr.isatty()
        if enabled and not self.plain:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="scene", file=sys.stderr)
        self.t0 = self.last = time.monotonic()

    def update(self, record: dict) -> None:
        self.done += 1
        self.failed += record["status"] == "failed"
        # one console line per message: a band name or file name with a line break in it must not start a fake one
        output = one_line(record["output"])
        # e.g. the free-space pre-check (also a failed scene's); a skipped scene's are its output's, said when it was
        # made (they stay in its report line)
        said = [] if record["status"] == "skipped" else record.get("warnings") or []
        for warning in said:
            self.write(f"line {record['line']}: {output}: warning: {one_line(warning)}")
        if record["status"] == "failed":
            self.write(f"line {record['line']}: {output}: {one_line(record['error'])}")
        for p in record.get("removed") or []:   # killed runs' leftovers the scene's writer removed
            self.write(f"line {record['line']}: {output}: {leftover_line(p)}")
        if record.get("note"):   # a row skipped because a concurrent run on the same list finished it
            self.write(f"line {record['line']}: {output}: skipped: {record['note']}")
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"failed {self.failed}")
        elif self.plain:
            now = time.monotonic()
            step = self.done * 10 // self.total != (self.done - 1) * 10 // self.total
            if step or self.done == self.total or now - self.last >= PROGRESS_SECONDS:
                self.last = now
                print(f"ksdiff batch: {self.done}/{self.total} scenes, {self.failed} failed, "
                      f"{now - self.t0:.0f} s", file=sys.stderr, flush=True)

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def record_outcome(future, scene: Scene, records: list[dict], report: Report | None, progress: Progress) -> None:
    rec = outcome(future, scene)
    records.append(rec)
    add_line(report, rec)   # flushed: a long run interrupted halfway keeps the lines it has
    progress.update(rec)


def collect(client, futures: dict, report: Report | None, progress: bool,
            records: list[dict] | None = None, stop: Stop | None = None, watch_workers: bool = False) -> list[dict]:
    """Records in completion order (appended to ``records``, which an interrupted caller keeps), each written to
    ``report`` as soon as it is known; returns early, with what has finished by then, once ``stop`` is requested
    (polled: the signal handler itself never raises, so nothing is torn down halfway). ``watch_workers`` (a local
    cluster): once it has had no worker for ``NO_WORKER_SECONDS``, the unfinished scenes fail and it returns."""
    from dask.distributed import as_completed

    records = [] if records is None else records
    bar = Progress(len(futures), progress)
    pending = as_completed(list(futures))
    done: set = set()
    watched = workerless = time.monotonic()
    try:
        while not pending.is_empty() and len(done) < len(futures):
            stopping = stop is not None and stop.requested
            ready = pending.next_batch(block=False)
            for future in ready:
                if future.status != "cancelled" and future not in done:   # cancelled: stopped, not an outcome
                    done.add(future)
                    record_outcome(future, futures[future], records, report, bar)
            if stopping:   # what had finished by then is recorded
                break
            now = time.monotonic()
            if watch_workers and now - watched >= WATCH_SECONDS:
                watched = now
                if client.nthreads():
                    workerless = now
                elif now - workerless >= NO_WORKER_SECONDS:
                    fail_unfinished(futures, done, records, report, bar)
                    client.cancel([f for f in futures if f.status != "finished"])
                    break
            if not ready:
                time.sleep(0.05)
    finally:
        bar.close()
    return records


def summarize(records: list[dict], wall: float, scenes: int | None = None, stopped_by: str | None = None) -> dict:
    """Counts, wall time and throughput of the scenes fused in this run; ``scenes`` (the list's length) counts those
    a stopped run did not get to as ``not_run``."""
    done = [r for r in records if r["status"] == "done"]
    mpx = sum(r["width"] * r["height"] for r in done) / 1e6
    total = len(records) if scenes is None else scenes
    return {
        "scenes": total, "done": len(done),
        "checked": sum(r["status"] == "checked" for r in records),   # check_only rows: nothing fused
        "skipped": sum(r["status"] == "skipped" for r in records),
        "failed": sum(r["status"] == "failed" for r in records),
        "not_run": total - len(records), "stopped_by": stopped_by,
        "seconds": round(wall, 3), "mpx": round(mpx, 3), "mpx_per_s": round(mpx / max(wall, 1e-9), 3),
    }


def write_summary(report: Report | None, summary: dict) -> None:
    add_line(report, {"summary": summary})


def cleanup(scenes: Iterable[Scene]) -> list[str]:
    """Remove temporary files of writers killed mid-scene and never redone (a redo removes them itself); each is
    said on the console, and the list returned (JSON-safe names) goes into the report's summary."""
    removed = [shown_path(p) for s in scenes if not s.output.startswith("/vsi") for p in remove_partials(s.output)]
    for p in removed:
        print(f"ksdiff batch: {leftover_line(p)}", file=sys.stderr, flush=True)
    return removed


def leftovers(scenes: Iterable[Scene]) -> list[str]:
    """Temporary files still beside the outputs (a remote cluster's workers still writing them)."""
    return [p for s in scenes if not s.output.startswith("/vsi") for p in stale_partials(s.output)]


def run(scenes: list[Scene], client, threads: int = 0, retries: int = 2, force: bool = False,
        report: Report | None = None, progress: bool = True,
        records: list[dict] | None = None, stop: Stop | None = None,
        watch_workers: bool = False, thread_share: int | None = None) -> tuple[list[dict], dict]:
    """Run every scene on ``client``'s cluster; returns the records (completion order, also appended to
    ``records``, which an interrupted caller keeps) and the summary (written to ``report``).

    Once ``stop`` is requested the scenes not finished are cancelled and the records so far returned with a summary
    that is not written: the caller closes the cluster, cleans up (``stopped``) and writes it.
    """
    t0 = time.perf_counter()
    records = [] if records is None else records
    futures: dict = {}
    try:
        futures = submit(client, scenes, threads, retries, force, local=stop is not None and stop.local,
                         thread_share=thread_share)
        collect(client, futures, report, progress, records, stop, watch_workers)
    except BaseException:   # e.g. Ctrl-C without ``stop``: the scenes not started are dropped
        client.cancel(list(futures))
        raise
    if stop is not None and stop.requested:
        client.cancel(list(futures))
        return records, summarize(records, time.perf_counter() - t0, len(scenes), stop.name)
    removed = cleanup(scenes)
    summary = {**summarize(records, time.perf_counter() - t0), "removed": removed}
    write_summary(report, summary)
    return records, summary


def interrupted(scenes: list[Scene], records: list[dict], report: Report | None, since: float,
                local: bool) -> list[str]:
    """After a stop, once the cluster is closed: the scenes that finished meanwhile (their sidecar was written
    after ``since``, a ``time.time()``) join the report, and a local cluster's stopped scenes leave no temporary
    files (a remote cluster's workers finish their scene; the next run sweeps what is left). Returns the temporary
    files removed."""
    removed = cleanup(scenes) if local else []
    seen = {r["line"] for r in records}
    for scene in scenes:
        done = read_record(scene.output) if scene.line not in seen else None
        if done and done.get("written", 0) >= since:
            # the fields of a 'done' line: its sidecar keeps them (``RESULT_KEYS``; an older one lacks some: null)
            rec = {**base_record(scene), "worker": None, **done.get("result", {}), "status": "done"}
            records.append(rec)
            add_line(report, rec)
    return removed


def print_summary(summary: dict) -> None:
    stopped = (f", {summary['not_run']} not run (stopped by {summary['stopped_by']})" if summary.get("stopped_by")
               else "")
    checked = f"{summary['checked']} checked (check_only), " if summary.get("checked") else ""
    print(f"{summary['scenes']} scene(s): {summary['done']} done, {checked}{summary['skipped']} skipped, "
          f"{summary['failed']} failed{stopped} in {summary['seconds']:.1f} s "
          f"({summary['mpx']:.1f} Mpx fused, {summary['mpx_per_s']:.2f} Mpx/s)", flush=True)


def stopped(stop: Stop, scenes: list[Scene], records: list[dict], report: Report | None, since: float,
            wall: float) -> int:
    """After a stop, once the cluster is closed: clean up, complete the report, write and print the summary, say
    what is left; returns the exit code (128 + the signal's number)."""
    removed = interrupted(scenes, records, report, since, local=stop.local)
    summary = {**summarize(records, wall, len(scenes), stop.name), "removed": removed}
    write_summary(report, summary)
    print_summary(summary)
    left = leftovers(scenes)
    if not left:
        files = "no temporary file is left"
    elif stop.local:   # not expected: the local workers are gone, their files unlocked
        files = f"{len(left)} temporary file(s) could not be removed, e.g. {left[0]}"
    else:
        files = (f"{len(left)} temporary file(s) are still there (the cluster's workers are finishing those scenes; "
                 "the next run removes what they leave)")
    print(f"ksdiff batch: stopped by {label(stop.signum)}; the scenes that finished are kept and listed in the "
          f"report, {files}: run the same command again to do the rest", file=sys.stderr, flush=True)
    return stop.exit_code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import distributed  # noqa: F401  (checked first: the plugin's own Python usually lacks it)
    except ImportError:   # double quotes: in cmd.exe the '>' inside single quotes redirected pip's output
        print("ksdiff batch: needs Dask: python -m pip install \"dask[distributed]>=2024.1\"", file=sys.stderr)
        return EXIT_USAGE
    with Stop() as stop:   # Ctrl-C / SIGTERM from here on: a clean stop (see batch_stop)
        stop.local = args.scheduler is None
        try:
            check_numbers(args)
            # the list's relative paths are joined to its folder and handed to GDAL: as GDAL names them (``from_os``)
            defaults = defaults_from(args)
            try:
                scenes = read_scenes(from_os(os.path.abspath(args.scenes)), defaults)
            except OSError as e:   # the list's own errors name it; the OS's do not (QA: "[Errno 2] ... 'x.csv'")
                raise UsageError(f"the scene list {quoted(args.scenes)} cannot be read: "
                                 f"{e.strerror or e}") from None
            for warning in case_warnings(scenes):   # right here, a collision on Windows and macOS
                print(f"ksdiff batch: warning: {warning}", file=sys.stderr, flush=True)
            workers, share = 0, None
            if args.scheduler is None:   # the rows' own thread counts (a cluster's: once connected)
                check_threads(0, usable_cores(), "this machine", scenes)
                workers, warning = local_workers(args.workers)
                if warning:
                    print(f"ksdiff batch: {warning}", file=sys.stderr, flush=True)
                share = local_thread_share(workers)   # before the cluster's own threads count against the limit
            if stop.requested:   # before any work: nothing to clean up
                return stop.exit_code
            try:
                report_file = Report(args.report) if args.report else contextlib.nullcontext()
            except OSError as e:
                raise UsageError(f"the report file {quoted(args.report)} cannot be created: {e.strerror or e}; give "
                                 "a --report path in an existing folder you may write to") from None
        except (OSError, SceneListError, UsageError) as e:
            print(f"ksdiff batch: {e}", file=sys.stderr)
            return EXIT_USAGE
        records: list[dict] = []
        summary: dict | None = None
        since, t0 = time.time(), time.perf_counter()
        with report_file as report:
            try:
                with connect(args.scheduler, workers, stop, args.retries) as client:
                    cores = client.run(usable_cores) if args.scheduler else {}
                    if cores:
                        check_threads(args.threads, max(cores.values()), "the largest worker host", scenes)
                    if not stop.requested:
                        _, summary = run(scenes, client, args.threads, args.retries, args.force, report,
                                         progress=not args.no_progress, records=records, stop=stop,
                                         watch_workers=args.scheduler is None,
                                         thread_share=share)
            except UsageError as e:
                print(f"ksdiff batch: {e}", file=sys.stderr)
                return EXIT_USAGE
            # the cluster is closed now: finished outputs are complete, stopped writers are gone (local cluster)
            if summary is None or summary["stopped_by"]:
                return stopped(stop, scenes, records, report, since, time.perf_counter() - t0)
    # a signal after the last scene (while the cluster closed) changes nothing: the run is complete
    print_summary(summary)
    lost = report.lost if isinstance(report, Report) else None
    if lost:   # said when it happened too; repeated here, where it is seen, and the run counts as failed
        print(f"ksdiff batch: {lost} (the summary above is not in it): free some space and run the same command "
              "again for a complete report (the finished scenes are skipped)", file=sys.stderr, flush=True)
    return EXIT_FAILED if summary["failed"] or lost else EXIT_OK


if __name__ == "__main__":
    # run main() from the importable module, not __main__: Dask then ships scene_task by reference
    from ksdiff_qgis.batch import main as _main

    sys.exit(_main())
