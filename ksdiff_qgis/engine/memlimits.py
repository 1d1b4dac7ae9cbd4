"""Memory limits set on this process rather than on the machine: a container's memory cgroup (v1 or v2) and the
address-space limit (``ulimit -v``, RLIMIT_AS).

/proc/meminfo tells the host's free RAM: in a container limited to 500 MB on a 24 GB host the engine planned
12 GB of tiles and the kernel killed QGIS without a word (exit 137). Each function returns
``(MB left under the limit, what it is)`` or None when no such limit applies or it cannot be read.
``root`` prefixes every absolute path (tests give a folder holding fake /proc and /sys files).
"""
from __future__ import annotations

import os

UNLIMITED_BYTES = 2**60   # cgroup v1 writes "no limit" as a page-rounded 2**63 - 1


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _number(path: str) -> int | None:
    text = _read(path)
    try:
        return int(text) if text else None
    except ValueError:   # "max": cgroup v2's "no limit"
        return None


def _inactive_file(folder: str, key: str) -> int:
    """Bytes of page cache the kernel reclaims before killing (memory.stat); the usage counts them, a run can have
    them."""
    for line in (_read(os.path.join(folder, "memory.stat")) or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0


def _mounts(root: str) -> list[tuple[str, str, str, str]]:
    """(mount root, mount point, filesystem type, super options) of each line of /proc/self/mountinfo."""
    out = []
    for line in (_read(root + "/proc/self/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3:
            out.append((fields[3], fields[4].replace("\\040", " "), tail[0], tail[2]))
    return out


def cgroup_folders(root: str, controller: str = "memory") -> list[tuple[str, str, str]]:
    """(version, folder of this process's cgroup of ``controller``, mount point of its hierarchy) for v2 and v1
    (``threadlimits`` reads the pids controller's)."""
    found = []
    mounts = _mounts(root)
    for line in (_read(root + "/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "" and parts[0] == "0":
            version, match = "v2", [m for m in mounts if m[2] == "cgroup2"]
        elif controller in controllers.split(","):
            version, match = "v1", [m for m in mounts if m[2] == "cgroup" and controller in m[3].split(",")]
        else:
            continue
        for mount_root, point, _, _ in match:
            # without a cgroup namespace the container's own cgroup is mounted at its mount point
            base = mount_root.rstrip("/")
            rel = path[len(base):] if path == base or path.startswith(base + "/") else ""
            folder = root + point + rel.rstrip("/")
            found.append((version, folder if os.path.isdir(folder) else root + point, root + point))
    return found


def cgroup_room(root: str = "") -> tuple[float, str] | None:
    """MB left under the tightest memory cgroup limit of this process (its cgroup and every parent), or None."""
    best = None
    for version, folder, top in cgroup_folders(root):
        limit_file, usage_file, cache = (("memory.max", "memory.current", "inactive_file") if version == "v2" else
                                         ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"))
        while True:
            limit, usage = _number(os.path.join(folder, limit_file)), _number(os.path.join(folder, usage_file))
            if limit is not None and limit < UNLIMITED_BYTES and usage is not None:
                used = max(0, usage - _inactive_file(folder, cache))
                room = max(0, limit - used) / 2**20
                if best is None or room < best[0]:
                    where = folder[len(root):] or "/"
                    best = (room, f"the {room:.0f} MB left under the memory limit of this container "
                                  f"({limit / 2**20:.0f} MB, {used / 2**20:.0f} MB in use; cgroup {version} {where})")
            if folder.rstrip("/") == top.rstrip("/") or len(folder) <= len(top):
                break
            folder = os.path.dirname(folder)
    return best


def _vm_size_bytes(root: str) -> int | None:
    for line in (_read(root + "/proc/self/status") or "").splitlines():
        if line.startswith("VmSize:"):
            try:
                return int(line.split()[1]) * 1024
            except (IndexError, ValueError):
                return None
    return None


def address_space_room(root: str = "") -> tuple[float, str] | None:
    """MB of address space left under RLIMIT_AS (``ulimit -v``): the limit minus this process's VmSize, or None."""
    try:
        import resource  # not on Windows
    except ImportError:
        return None
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (AttributeError, ValueError, OSError):
        return None
    vm = _vm_size_bytes(root)
    if soft == resource.RLIM_INFINITY or soft < 0 or vm is None:
        return None
    room = max(0, soft - vm) / 2**20
    return room, (f"the {room:.0f} MB of address space left under this process's virtual-memory limit "
                  f"(ulimit -v: {soft / 2**20:.0f} MB, {vm / 2**20:.0f} MB in use)")


def process_limits(root: str = "") -> list[tuple[float, str]]:
    """Every limit of this process's memory that applies: (MB left, what it is)."""
    return [r for r in (cgroup_room(root), address_space_room(root)) if r is not None]
