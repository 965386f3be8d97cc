"""Errors a user can act on.

Every exception raised for bad input or a missing resource is a
``JukestyleError`` whose message is one line that names the file (or
setting) and the problem, so that command-line front ends can print it
without a traceback.
"""


class JukestyleError(Exception):
    """Base class: a one-line, user-facing problem description."""


class AudioError(JukestyleError, ValueError):
    """An audio file or array that cannot be used (missing, unreadable, empty, non-finite, too short)."""


class ConfigError(JukestyleError, ValueError):
    """A setting that does not exist or does not fit (unknown method, block, level, preset); lists the valid ones."""


class CheckpointError(JukestyleError, RuntimeError):
    """A checkpoint that cannot be obtained, read, or does not fit the model."""


class OutputError(JukestyleError, OSError):
    """An output that cannot be written (no space left, no permission): nothing half-written is left."""


class RunInterrupted(JukestyleError):
    """A run stopped by a signal (SIGTERM from a job system or ``kill``, Ctrl-C) after saving what it had."""
