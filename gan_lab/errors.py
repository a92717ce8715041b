"""The one exception type the CLI turns into a one-line message (exit code 2)."""


class UserError(Exception):
    """A problem the user can fix: bad flag, unknown name, missing file. Message is one line."""
