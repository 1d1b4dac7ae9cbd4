"""Exceptions the engine raises; the Processing layer turns them into QgsProcessingException."""


class InputError(ValueError):
    """Bad input detected before any output pixel is written (the message is shown to the user)."""


class Cancelled(RuntimeError):
    """The user cancelled the run; the partial output has been removed."""
