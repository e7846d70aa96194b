"""The one exception type for problems the user can fix (bad input, missing files)."""


class UserError(Exception):
    """A problem with the user's input: reported as one clear line, never a traceback."""
