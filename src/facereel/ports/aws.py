"""Plumbing shared by the AWS adapters (S3, SQS, DynamoDB, EC2, Lambda): one client factory
with bounded retries and timeouts, and one classification of boto failures, so every adapter
reports the same situation with the same code."""

from __future__ import annotations

import os
from typing import Any

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

BOTO_ERRORS = (ClientError, BotoCoreError, Boto3Error)

_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchEntity"}
_NO_CONTAINER = {"NoSuchBucket", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",
                 "ResourceNotFoundException"}
_DENIED = {"AccessDenied", "AccessDeniedException", "403", "Forbidden", "InvalidAccessKeyId",
           "SignatureDoesNotMatch", "AllAccessDisabled", "AccountProblem", "InvalidToken",
           "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
           "UnrecognizedClientException", "MissingAuthenticationToken",
           "IncompleteSignature", "InvalidSecurity"}
_BAD_KEY = {"KeyTooLongError", "InvalidObjectName"}
_PRECONDITION = {"PreconditionFailed", "ConditionalRequestConflict", "412"}
_UNREACHABLE_NAMES = ("EndpointConnectionError", "ConnectionClosedError", "ConnectTimeoutError",
                      "ReadTimeoutError", "ProxyConnectionError", "ConnectionError",
                      "ResponseStreamingError", "HTTPClientError", "SSLError")
_DENIED_NAMES = ("NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError")


def classify_boto_error(exc: BaseException) -> tuple[str, str]:
    """(kind, detail) of a boto failure; kind is one of `not_found`, `no_container`, `denied`,
    `unreachable`, `bad_key`, `precondition_failed` or `error`. Shared by the S3, SQS and
    DynamoDB adapters so all three report the same situations with the same codes."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = f"{code or status}: {error.get('Message') or 'no message'}"
        kinds = ((_NOT_FOUND, "not_found"), (_NO_CONTAINER, "no_container"),
                 (_DENIED, "denied"), (_BAD_KEY, "bad_key"),
                 (_PRECONDITION, "precondition_failed"))
        for codes, kind in kinds:
            if code in codes:
                return kind, detail
        return ("denied" if status == 403 else "error"), detail
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names.intersection(_UNREACHABLE_NAMES):
        return "unreachable", str(exc)
    if names.intersection(_DENIED_NAMES):
        return "denied", f"no usable credentials: {exc}"
    return "error", str(exc) or type(exc).__name__


def boto_config(max_attempts: int = 5, connect_timeout_s: float = 5.0,
                read_timeout_s: float = 60.0, **extra: Any) -> Config:
    """Bounded retries (standard mode backs off and retries throttling and 5xx) and timeouts,
    so a dead endpoint fails in seconds instead of hanging a worker."""
    return Config(retries={"max_attempts": max_attempts, "mode": "standard"},
                  connect_timeout=connect_timeout_s, read_timeout=read_timeout_s, **extra)


def make_boto_client(service: str, endpoint_url: str | None, region: str | None,
                     access_key: str | None, secret_key: str | None, config: Config) -> Any:
    """A boto3 client; None values fall back to boto3's usual environment lookup, except the
    region, which defaults to us-east-1 for self-hosted endpoints (they ignore it)."""
    if region is None and endpoint_url:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") \
            or "us-east-1"
    return boto3.client(service, endpoint_url=endpoint_url or None, region_name=region,
                        aws_access_key_id=access_key or None,
                        aws_secret_access_key=secret_key or None, config=config)
