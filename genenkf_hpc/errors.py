"""The one exception users can cause.

Anything a user can get wrong (a config value, a file, an argument) raises :class:`UserError`
with a message that names the offending key, value or file. The CLI prints it as a single line
``error: ...`` and exits with status 2; every other exception is a bug and exits 1.
"""


class UserError(Exception):
    """Bad input: a config key, a value, a file or an argument."""


class DivergenceError(UserError):
    """The state became non-finite or exploded; the message names cycle, method and variable."""
