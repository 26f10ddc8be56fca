"""Errors that the CLI turns into one clear line instead of a traceback."""


class UserInputError(ValueError):
    """Bad input from a user: a file, field or option that is wrong.

    The message names the file, field or option and, where there is a fixed set, the valid choices.
    """
