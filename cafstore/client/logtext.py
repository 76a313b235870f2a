"""Reading stored task logs: ``<UTC ISO-8601 timestamp>Z <text>`` per line (docs/datamodel.md).

``Task.stdout`` is the text as printed (timestamps removed); ``loglines``
keeps the time of each line. A line without a timestamp (written by some
other tool) is kept whole.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Iterator, Optional, Tuple

_STAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z ")


def _split(line: bytes) -> Tuple[Optional[bytes], bytes]:
    match = _STAMP.match(line)
    if match is None:
        return None, line
    return match.group(1), line[match.end() :]


def text(stored: bytes) -> str:
    """The log as the task printed it."""
    if not stored:
        return ""
    return b"".join(_split(line)[1] for line in stored.splitlines(keepends=True)).decode("utf-8", "replace")


def lines(stored: bytes) -> Iterator[Tuple[Optional[datetime], str]]:
    """(local naive datetime or None, line without newline) per stored line."""
    for line in stored.splitlines():
        stamp, body = _split(line)
        when = None
        if stamp is not None:
            utc = datetime.strptime(
                stamp.decode("ascii"), "%Y-%m-%dT%H:%M:%S.%f" if b"." in stamp else "%Y-%m-%dT%H:%M:%S"
            ).replace(tzinfo=timezone.utc)
            when = utc.astimezone().replace(tzinfo=None)
        yield when, body.decode("utf-8", "replace")
