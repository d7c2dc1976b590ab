import time
from email.utils import formatdate

from tether.models.http import retry_after


def test_retry_after_in_seconds_milliseconds_and_dates() -> None:
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    later = retry_after({"retry-after": formatdate(time.time() + 30, usegmt=True)})
    assert later is not None and 25 < later <= 30
    assert retry_after({"retry-after": formatdate(time.time() - 30, usegmt=True)}) == 0.0


def test_unreadable_or_missing_retry_after_is_none_not_an_error() -> None:
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None
    assert retry_after(None) is None
