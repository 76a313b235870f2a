"""Botocore failures translated into the store's exception tree, each with its fix.

Kept apart from the backend so the mapping can be read (and tested) as one
table: what the object store said, what it means for the user, what to do.
"""

from __future__ import annotations

from typing import Any

from cafstore.exception import ObjectNotFound, RemoteStoreError, StorageFull, StoreError

_DENIED = {"AccessDenied", "403", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken"}
_NO_BUCKET = {"NoSuchBucket"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
_FULL = {"QuotaExceeded", "InsufficientStorage", "EntityTooLarge", "StorageFull", "507"}


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError ("" for anything else)."""
    response: Any = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def http_status(exc: BaseException) -> int:
    response: Any = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def translate(exc: BaseException, action: str, where: str, endpoint: str) -> StoreError:
    """The store error for ``exc`` raised while doing ``action`` (e.g. "write object 1a2b3c")
    on ``where`` (``s3://bucket/prefix``) at ``endpoint``."""
    import botocore.exceptions as bex

    place = f"{where} (endpoint {endpoint})"
    if isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError)):
        return RemoteStoreError(
            f"Could not {action}: no AWS credentials were found for {place}. Set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile in ~/.aws/credentials, or run where an "
            "instance role applies."
        )
    if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectTimeoutError, bex.ConnectionClosedError)):
        return RemoteStoreError(
            f"Could not {action}: the object store at {endpoint} cannot be reached ({exc}). Check that it is "
            "running and that the endpoint (store.json's endpoint_url, or AWS_ENDPOINT_URL) is right; "
            "nothing was half-written, so retry once it answers."
        )
    code, status = error_code(exc), http_status(exc)
    if code in _NO_BUCKET:
        return RemoteStoreError(
            f"Could not {action}: the bucket of {place} does not exist. Create it (for example "
            "`aws s3 mb s3://BUCKET`), or fix the bucket name in the store's store.json."
        )
    if code in _DENIED or status == 403:
        return RemoteStoreError(
            f"Could not {action}: the object store denied access to {place} ({code or status}). Check the "
            "access key and secret key (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the AWS profile) and that "
            "they may read, write, list and delete objects under that prefix."
        )
    if code in _FULL or status == 507:
        return StorageFull(
            f"Could not {action}: the object store holding {place} is full or over its quota ({code or status}). "
            "Nothing was half-written; free space there (`cafstore gc`) or raise the quota, then retry."
        )
    if code in _MISSING or status == 404:
        return ObjectNotFound(
            f"Could not {action}: it is missing from {place}; run `cafstore fsck` to see what is affected."
        )
    if isinstance(exc, bex.BotoCoreError) or isinstance(exc, bex.ClientError):
        return RemoteStoreError(f"Could not {action} at {place}: {exc}.")
    raise exc
