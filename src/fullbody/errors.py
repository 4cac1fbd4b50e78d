"""The errors a user can cause: one base, so every entry point ends them the same way.

An error deriving from :class:`UserError` is the user's to fix (a wrong option, a missing or
malformed file, a full disk); entry points print its message as one line and exit with status
2 (``fullbody.utils.cli.user_errors``). Its message names the file or the option. This module is
the ground floor: it imports nothing of the package, so every room may raise these.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; the message names the file or the option and the fix."""


class ConfigError(UserError, ValueError):
    """A setting of the composed config is wrong or missing; the message names its key."""


class OutputError(UserError, OSError):
    """An output file could not be written (full disk, read-only folder); the message names
    the file, and what was computed is not lost silently (it was printed, or is named)."""


class ImageLayoutError(UserError, ValueError):
    """An image array of the wrong shape, dtype or colour order was passed; the message says
    what was given and what is expected."""


class InputNotFoundError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist (or holds nothing to read); the message
    names it and the option that gave it."""


class OutputExistsError(UserError, FileExistsError):
    """An output would replace files a user made; the message names them and how to allow it
    (``overwrite=true`` or another name)."""
