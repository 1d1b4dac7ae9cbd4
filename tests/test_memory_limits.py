"""QA: in a 500 MB memory cgroup on a 24 GB host, METHOD=ksdiff on a 2400² scene was killed by the kernel without a
word (exit 137): the budget came from /proc/meminfo's MemAvailable alone. Now the tightest of the machine's free RAM,
the memory cgroup (v1 or v2, the process's and its parents') and ``ulimit -v`` sets it, and the log says which."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from fixture_helpers import fake_files

from ksdiff_qgis.engine import memlimits, memory

MB = 2**20


MOUNTINFO = ("35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
             "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")


def test_cgroup_v1_limit_and_its_parents(tmp_path):
    base = "/sys/fs/cgroup/memory"
    root = fake_files(tmp_path, {
        "/proc/self/cgroup": "4:memory:/ci/job\n0::/\n",
        "/proc/self/mountinfo": MOUNTINFO,
        f"{base}/memory.limit_in_bytes": "9223372036854771712\n", f"{base}/memory.usage_in_bytes": str(9 * 2**30),
        f"{base}/ci/memory.limit_in_bytes": str(2000 * MB), f"{base}/ci/memory.usage_in_bytes": str(1000 * MB),
        f"{base}/ci/job/memory.limit_in_bytes": str(500 * MB), f"{base}/ci/job/memory.usage_in_bytes": str(200 * MB),
        # page cache the kernel reclaims first is room for the run
        f"{base}/ci/job/memory.stat": f"cache 1\ntotal_inactive_file {50 * MB}\n",
    })
    room, what = memlimits.cgroup_room(root)
    assert room == pytest.approx(350)
    assert what == ("the 350 MB left under the memory limit of this container (500 MB, 150 MB in use; "
                    "cgroup v1 /sys/fs/cgroup/memory/ci/job)")
    # a parent's limit that leaves less wins
    (tmp_path / base.lstrip("/") / "ci/memory.usage_in_bytes").write_text(str(1800 * MB))
    assert memlimits.cgroup_room(root)[0] == pytest.approx(200)
    assert "cgroup v1 /sys/fs/cgroup/memory/ci)" in memlimits.cgroup_room(root)[1]


def test_cgroup_v2_limit_and_no_limit(tmp_path):
    base = "/sys/fs/cgroup"
    root = fake_files(tmp_path, {
        "/proc/self/cgroup": "0::/user.slice/app\n",
        "/proc/self/mountinfo": "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        f"{base}/user.slice/app/memory.max": "max\n", f"{base}/user.slice/app/memory.current": str(100 * MB),
        f"{base}/user.slice/memory.max": str(1024 * MB), f"{base}/user.slice/memory.current": str(424 * MB),
        f"{base}/user.slice/memory.stat": f"anon 1\ninactive_file {24 * MB}\n",
    })
    room, what = memlimits.cgroup_room(root)
    assert room == pytest.approx(624)
    assert what.endswith("(1024 MB, 400 MB in use; cgroup v2 /sys/fs/cgroup/user.slice)")
    (tmp_path / "sys/fs/cgroup/user.slice/memory.max").write_text("max\n")
    assert memlimits.cgroup_room(root) is None


def test_cgroup_without_namespace_is_read_at_the_mount_point(tmp_path):
    """Docker without a cgroup namespace: /proc/self/cgroup names /docker/<id>, mounted as the hierarchy's root."""
    base = "/sys/fs/cgroup/memory"
    root = fake_files(tmp_path, {
        "/proc/self/cgroup": "9:memory:/docker/abc\n",
        "/proc/self/mountinfo": "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n",
        f"{base}/memory.limit_in_bytes": str(800 * MB), f"{base}/memory.usage_in_bytes": str(300 * MB),
    })
    assert memlimits.cgroup_room(root)[0] == pytest.approx(500)


def test_no_cgroup_files_no_limit(tmp_path):
    assert memlimits.cgroup_room(str(tmp_path)) is None
    assert memlimits.process_limits(str(tmp_path)) == []


def test_address_space_limit(tmp_path, monkeypatch):
    resource = pytest.importorskip("resource")
    root = fake_files(tmp_path, {"/proc/self/status": "Name:\tpython\nVmSize:\t  1048576 kB\nVmRSS:\t 1 kB\n"})
    monkeypatch.setattr(resource, "getrlimit", lambda what: (3 * 2**30, resource.RLIM_INFINITY))
    room, what = memlimits.address_space_room(root)
    assert room == pytest.approx(2048)
    assert what == ("the 2048 MB of address space left under this process's virtual-memory limit "
                    "(ulimit -v: 3072 MB, 1024 MB in use)")
    monkeypatch.setattr(resource, "getrlimit", lambda what: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert memlimits.address_space_room(root) is None


def test_the_tightest_limit_sets_the_budget_and_is_logged(monkeypatch):
    monkeypatch.delenv(memory.ENV_LIMIT, raising=False)
    monkeypatch.setattr(memory.sys, "platform", "linux")
    monkeypatch.setattr(memory, "_linux_available_mb", lambda: 23_700.0)
    monkeypatch.setattr(memlimits, "process_limits", lambda root="": [(300.0, "the 300 MB left under X")])
    assert memory.available_mb() == 300.0
    assert memory.budget_mb() == (150.0, "half of the 300 MB left under X")
    assert memory.limit_note() == "Memory: this run plans for 150 MB (half of the 300 MB left under X)."
    # a 2400² KSDiff run no longer plans 1024-px tiles that need ~1 GB
    tile, _, warning = memory.fit_tile(1024, 32, 2400, 2400, 4, 10, learned=True)
    assert tile < 1024 and "half of the 300 MB left under X" in warning
    monkeypatch.setattr(memlimits, "process_limits", lambda root="": [(40_000.0, "a loose limit")])
    assert memory.available_mb() == 23_700.0 and memory.limit_note() is None


_PROBE = ("from ksdiff_qgis.engine import memory; import sys; a = memory.available(); "
          "sys.stdout.write(f'{a[0]:.0f}|{a[1]}')")


def test_a_real_memory_cgroup_sets_the_budget():
    """A process moved into a 300 MB memory cgroup sees at most 300 MB (needs root and a writable cgroup tree)."""
    created = None
    for folder, limit_file in (("/sys/fs/cgroup/memory", "memory.limit_in_bytes"), ("/sys/fs/cgroup", "memory.max")):
        if not os.path.isfile(os.path.join(folder, limit_file if folder.endswith("memory") else "cgroup.controllers")):
            continue
        path = os.path.join(folder, f"ksdiff-test-{uuid.uuid4().hex[:8]}")
        try:
            os.mkdir(path)
            with open(os.path.join(path, limit_file), "w") as f:
                f.write(str(300 * MB))
            created = (path, limit_file)
            break
        except OSError:
            if os.path.isdir(path):
                os.rmdir(path)
    if created is None:
        pytest.skip("no memory cgroup can be created here")
    path, _ = created
    try:
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        out = subprocess.run(["/bin/sh", "-c", f'echo $$ > {path}/cgroup.procs && exec "$0" -c "$1"',
                              sys.executable, _PROBE], cwd=repo, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        mb, what = out.stdout.split("|", 1)
        assert float(mb) <= 300 and f"cgroup v{'1' if 'memory/' in path else '2'} /{path.split('/', 1)[1]}" in what
        assert "(300 MB," in what
    finally:
        os.rmdir(path)   # the probe has exited: the cgroup is empty
