"""What the input files were on disk when a run opened them, checked again before its output is committed.

QA: an MS overwritten in place mid-run (``cp new.tif ms.tif``: same inode, new bytes) gave an output whose first tiles
came from the old file and the last from the new one, reported OK. Size, modification time and inode of each input
(PAN, MS, a model file) are recorded when the run opens it; any change refuses the commit, so nothing mixed is written.
"""
from __future__ import annotations

import os

from ..errors import InputError, quoted
from ..gdalutil import os_path
from .partials import Signature, signature
from .writer import local_file


class InputStamps:
    """The inputs' (role, path) -> signature at the start of a run; ``check`` raises InputError when one changed."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[str, str, Signature | None]] = {}

    def add(self, role: str, name: str) -> None:
        """Record the file behind ``name`` (the PAN, the MS, the MODEL) as it is now; names of no local file are
        skipped."""
        local = local_file(str(name))   # names of no local file (remote, in memory, driver-prefixed) are skipped
        if local is not None and os.path.isfile(os_path(local)):
            self._files[role] = (str(name), local, signature(local))

    def check(self) -> None:
        """Raise InputError naming the first input whose file changed (rewritten, replaced, deleted) since ``add``."""
        for role, (name, local, sig) in self._files.items():
            if signature(local) != sig:
                raise InputError(f"the {role} {quoted(name)} changed on disk while this run read it (rewritten, "
                                 "replaced or removed): nothing was written and any earlier output is unchanged; "
                                 "run again once the file is complete")
