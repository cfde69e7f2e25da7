"""gradlab's exception types."""

import os


class GradlabError(ValueError):
    """Bad input to a gradlab function.

    The message names the argument, the value received and what would be accepted,
    e.g. ``sizes must be at least two positive integers; got sizes=(3, 0, 3)``.
    """


class UserCodeError(GradlabError):
    """The user's function (or module) raised, or cannot be called as asked; the message
    names the exception (or the signature).

    The user's exception is chained as ``__cause__``, so its traceback is kept.
    """


class UserCodeStopped(GradlabError):
    """The user's code was stopped before it returned: it ran past its time limit
    (``status`` ``"timeout"``) or the process running it died (``"crashed"``: a signal
    such as SIGSEGV, or an exit without a reply).

    Not a :class:`UserCodeError` (the code raised nothing): code that catches the user's
    exceptions to carry on lets this one through, since the code is gone.
    """

    def __init__(self, message: str, status: str):
        super().__init__(message)
        self.status = status


class NotSendable(GradlabError):
    """Arguments that cannot be sent to the process that runs the user's code (a jax tracer,
    an open file): code named by its file runs there, so jax cannot trace it."""


def could_not_start(library: str, exc: BaseException, env: str, advice: str) -> GradlabError:
    """The error for a library that failed to import or start (jax, matplotlib).

    Its exception in one line, and, when the environment variable that most often causes
    the failure is set, that variable and ``advice``; otherwise, to reinstall the library.
    """
    value = os.environ.get(env)
    hint = f"; {env}={value!r} is set: {advice}" if value else f"; reinstall it with pip install {library}"
    detail = str(exc).splitlines()[0] if str(exc) else "(no message)"
    return GradlabError(f"{library} could not start ({type(exc).__name__}: {detail}){hint}")
