"""``cafstore pull`` that stops in the middle of a large object, for the test to stop the server there
(test_s3_pull_stop.py): the first GET of an object of 1 MiB or more, once its headers have arrived
and before its body is read, writes ``<signals>/paused`` and waits for ``<signals>/go``.

The S3 client here tries each request once (a server that stays down, as a user meets it after the
retries): the pull then fails at once instead of backing off for a minute.

argv: store, signals folder, then the ``cafstore`` arguments (``pull origin``)
"""

import sys
import time
from pathlib import Path

import boto3.session

import cafstore.store.backends.s3config as s3config
from cafstore.cli.main import main

store, signals = sys.argv[1], Path(sys.argv[2])
s3config.RETRY_ATTEMPTS = 1
_make_client = boto3.session.Session.client
_paused: list = []


def _pause(parsed: dict, **_: object) -> None:
    if _paused or parsed.get("ContentLength", 0) < 1 << 20:
        return
    _paused.append(True)
    (signals / "paused").touch()
    while not (signals / "go").exists():
        time.sleep(0.01)


def _client(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    client = _make_client(self, *args, **kwargs)
    client.meta.events.register("after-call.s3.GetObject", _pause)
    return client


boto3.session.Session.client = _client  # type: ignore[method-assign]
sys.argv = ["cafstore", "--store", store, *sys.argv[3:]]
main()
