"""The activities' typed errors, and how they cross the activity edge.

Two families, on purpose:

* :class:`PermanentFailure` and its subclasses: retrying the same input cannot succeed (bad data,
  an invalid policy file, a mail server refusing the message for good). At the activity edge they
  become a non-retryable ``ApplicationError`` whose ``type`` is the class name, so a workflow can
  catch them by type and the retry policies in :mod:`activities.timeouts` can list them.
* Everything else (a refused connection, an SMTP 4xx, :class:`NotificationDeferred`,
  :class:`NotificationInProgress`) is raised as a plain exception and Temporal retries it.

Failure messages are stored in clear text in the workflow history (unless the failure converter
encodes them), so no message built here ever contains deal terms, amounts, subjects or bodies.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

_M = TypeVar("_M", bound=BaseModel)

#: How many validation problems a message lists before summarising the rest.
_MAX_PROBLEMS = 5


class PermanentFailure(Exception):
    """Retrying cannot help: mapped to a non-retryable ``ApplicationError`` at the activity edge."""

    #: The ``ApplicationError.type`` workflows see; the class name, so code and history agree.
    error_type: ClassVar[str] = "PermanentFailure"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.error_type = cls.__name__


class InvalidPolicy(PermanentFailure):
    """The policy file is missing, unreadable, unparseable or does not validate."""


class InvalidReviewInput(PermanentFailure):
    """A review was asked about data that does not validate (terms, deal type, policy)."""


class InvalidNotification(PermanentFailure):
    """A notification does not validate (addresses, key, kind, a multi-line subject...)."""


class NotificationRejected(PermanentFailure):
    """The mail server refused the recipients or the message for good (an SMTP 5xx reply)."""


class NotificationDeferred(Exception):
    """The mail server asked us to try again later (an SMTP 4xx reply). Retryable."""


class NotificationInProgress(Exception):
    """Another attempt is sending the same notification right now. Retryable: the retry will
    find it delivered and answer ``duplicate=True``."""


class SmtpMisconfigured(Exception):
    """The mail server refused *us* (login, sender address, missing STARTTLS).

    Retryable on purpose: the fix is in the worker's settings, and once an operator corrects them
    the pending retries deliver. The notification retry policy bounds how long that may take.
    """


class LedgerUnreadable(Exception):
    """A sent-ledger marker exists but cannot be read. Retryable: guessing "not sent" could send
    twice, so an operator must look at the file named in the message."""


class LedgerUnavailable(Exception):
    """The ledger's database cannot be reached or answered with an error. Retryable: nothing is
    sent without a claim, so the notification waits for the database to come back."""


class NotificationsNotConfigured(ValueError):
    """Raised at worker start when no notification channel is configured."""


#: ``ApplicationError`` types that no retry can fix; listed in the retry policies.
PERMANENT_TYPES: tuple[str, ...] = (
    InvalidPolicy.error_type,
    InvalidReviewInput.error_type,
    InvalidNotification.error_type,
    NotificationRejected.error_type,
)


def describe(error: ValidationError, limit: int = _MAX_PROBLEMS) -> str:
    """Where and why validation failed, without the offending values.

    pydantic's own message quotes every input value; ours names the field path and the rule only,
    because inputs here carry confidential deal terms and failure messages end up in the history.
    """
    problems = [
        f"{'.'.join(str(part) for part in err['loc']) or '(root)'}: {err['msg']}"
        for err in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    shown = "; ".join(problems[:limit])
    return shown if len(problems) <= limit else f"{shown}; and {len(problems) - limit} more"


def parse_input(model: type[_M], value: object, error: type[PermanentFailure]) -> _M:
    """``value`` as a validated ``model``, or ``error`` naming the fields that are wrong.

    Activities receive validated models from the pydantic data converter; this also accepts a
    plain mapping (another converter, a test, a hand-written client) and validates it the same way.
    """
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as err:
        raise error(f"invalid {model.__name__}: {describe(err)}") from None


@contextmanager
def activity_edge() -> Iterator[None]:
    """Turn a :class:`PermanentFailure` raised inside into a non-retryable ``ApplicationError``.

    The cause is not chained: its message is the one we already carry, and a chained cause would
    add nothing but another copy in the history.
    """
    try:
        yield
    except PermanentFailure as err:
        raise ApplicationError(str(err), type=err.error_type, non_retryable=True) from None
