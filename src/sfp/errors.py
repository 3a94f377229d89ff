"""The one exception type for user mistakes.

Anything raised as :class:`UserError` is printed by the CLI as a single line on stderr with exit code 2, never as a
stack trace. Library callers get an ordinary exception (a ``ValueError``) they can catch.
"""


class UserError(ValueError):
    """A problem with the user's input (file, option, config, data) that they can fix."""
