"""Exceptions the engine raises; the Processing layer turns them into QgsProcessingException."""


class InputError(ValueError):
    """Bad input detected before any output pixel is written (the message is shown to the user)."""


class Cancelled(RuntimeError):
    """The user cancelled the run; the partial output has been removed."""


def disk_full(error: BaseException) -> bool:
    """True for a write that failed because the disk (or the user's quota) is full: retrying will not help.

    The writer's OSError carries GDAL's words, not an errno ("No space left on device")."""
    import errno

    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    return isinstance(error, OSError) and "no space left on device" in str(error).lower()


def quoted(path: object) -> str:
    """A path as messages show it: in plain double quotes, as written ('/a/\'Test\' "q"/o.png' by Python's repr
    escaped quotes and switched quote marks by the path's own)."""
    return f'"{path}"'
