"""gradlab's exception types."""


class GradlabError(ValueError):
    """Bad input to a gradlab function.

    The message names the argument, the value received and what would be accepted,
    e.g. ``sizes must be at least two positive integers; got sizes=(3, 0, 3)``.
    """


class UserCodeError(GradlabError):
    """The user's function (or module) raised; the message names the exception.

    The user's exception is chained as ``__cause__``, so its traceback is kept.
    """
