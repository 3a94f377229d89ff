"""The one exception type for user mistakes.

Anything raised as :class:`UserError` is printed by the CLI as a single line on stderr with exit code 2, never as a
stack trace. Library callers get an ordinary exception (a ``ValueError``) they can catch.
"""


class UserError(ValueError):
    """A problem with the user's input (file, option, config, data) that they can fix."""


def first_line(err: BaseException, default: str = "") -> str:
    """The first line of an exception's message (some libraries' messages span lines), or `default`."""
    text = str(err)
    return text.splitlines()[0] if text.strip() else default
