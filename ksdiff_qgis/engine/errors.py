"""Exceptions the engine raises; the Processing layer turns them into QgsProcessingException."""


class InputError(ValueError):
    """Bad input detected before any output pixel is written (the message is shown to the user)."""


class OutputTaken(InputError):
    """Another run wrote this run's output while it was fusing; its result was kept and this run's not written."""


class OutputBusy(InputError):
    """Another run is writing this run's output right now (its temporary file is locked); nothing was written."""


class ModelMemoryError(InputError):
    """Memory ran out loading a model: its message says what helps; smaller tiles or fewer threads cannot (QA139)."""


class Cancelled(RuntimeError):
    """The user cancelled the run; the partial output has been removed."""


def disk_full(error: BaseException) -> bool:
    """True for a write that failed because the disk (or the user's quota) is full: retrying will not help.

    The writer's OSError carries GDAL's words, not an errno ("No space left on device")."""
    import errno

    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    return isinstance(error, OSError) and "no space left on device" in str(error).lower()


# bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they reorder the text after them on screen
_BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def _hidden(ch: str) -> bool:
    import unicodedata

    return ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp")


# format characters that belong to visible text: zero width (non-)joiners of emoji sequences and Indic or Persian
# words, the tag characters of subdivision flags (England's, Scotland's)
_JOINERS = frozenset(["\u200c", "\u200d", *map(chr, range(0xE0020, 0xE0080))])


def _escaped(ch: str) -> str:
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


def one_line(text: object) -> str:
    """A user's string (a band name or description) as a message shows it: on one line and displayed as written.
    Control characters (newline, tab, ESC, ...), line/paragraph separators, bidi controls and the other invisible
    format characters (Unicode category Cf: U+200B zero width space, U+00AD soft hyphen, U+FEFF, ...) are escaped as
    Python's repr writes them (\\n, \\t, \\x1b, \\u202e, \\u200b): a band named 'a\\nINFO: fake' made a fake "INFO:" log
    line, and 'wv2\\u200b' showed as 'wv2' in "unknown sensor 'wv2'". Joiners of visible text (``_JOINERS``: an
    emoji's ZWJ) stay. Only for messages; the output file keeps the name as it is."""
    import unicodedata

    return "".join(repr(ch)[1:-1] if _hidden(ch) else
                   _escaped(ch) if unicodedata.category(ch) == "Cf" and ch not in _JOINERS else ch for ch in str(text))


# how much of a name (a band's, a layer's) a message shows: a 100 kB band description made two 100 kB log lines (QA116)
MAX_SHOWN = 80
# how much of longer free text from a file (a model card's notes) a message shows
MAX_NOTE = 200


def shown_name(text: object, limit: int = MAX_SHOWN) -> str:
    """``one_line`` of a name from a file or a layer, cut at ``limit`` characters with an ellipsis (before escaping,
    so no escape is cut in two). Only for messages; the output file keeps the whole name."""
    text = str(text)
    return one_line(text if len(text) <= limit else text[:limit - 1] + "…")


def has_control(text: str) -> bool:
    """True when ``text`` holds a control character, a line or paragraph separator or a bidi control (a path cell
    with one is a spreadsheet's mistake); invisible format characters such as an emoji's joiner are allowed."""
    return any(_hidden(ch) for ch in text)


def quoted(path: object) -> str:
    """A path as messages show it: in plain double quotes, as written ('/a/\'Test\' "q"/o.png' by Python's repr
    escaped quotes and switched quote marks by the path's own), control characters escaped by ``one_line`` (QA116: a
    file name holding a newline and "WARNING:" made a fake log line, one holding ESC drove the terminal)."""
    return f'"{one_line(path)}"'
