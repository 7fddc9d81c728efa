"""Typed errors, mapped from the server's problem codes (src/contract/problems.ts)."""
from __future__ import annotations

import builtins
from typing import Any, Dict, Optional


class SdkError(Exception):
    """Base class of every error the l2o client raises."""


class ApiError(SdkError):
    """The server answered with an error status (RFC 9457 problem+json)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        request_id: Optional[str] = None,
        problem: Optional[Dict[str, Any]] = None,
        retry_after: Optional[float] = None,
        method: Optional[str] = None,
        url: Optional[str] = None,
    ) -> None:
        where = f" ({method} {url})" if method and url else ""
        rid = f" [request {request_id}]" if request_id else ""
        super().__init__(f"{status} {code}: {detail}{where}{rid}")
        self.status = status
        self.code = code
        self.detail = detail
        self.request_id = request_id
        self.problem = problem
        self.retry_after = retry_after
        self.method = method
        self.url = url


class ValidationError(ApiError):
    """The request was malformed or refused as invalid (400, 405, 406, 413, 415, 422)."""


class AuthError(ApiError):
    """The API key is missing, wrong or revoked (401), or may not do this (403)."""


class NotFoundError(ApiError):
    """The optimizer, version, session or key does not exist (404)."""


class ConflictError(ApiError):
    """The request conflicts with the server's state (409)."""


class DigestMismatchError(ConflictError):
    """A state or pin belongs to another optimizer digest than the one that would answer."""


class StepConflictError(ConflictError):
    """A session step was sent out of order (409 step_conflict)."""


class RateLimitError(ApiError):
    """Too many requests (429); ``retry_after`` is the wait the server asked for, in seconds."""


class ServerError(ApiError):
    """The server failed (5xx)."""


class ConnectionError(SdkError, builtins.ConnectionError):
    """No HTTP answer: refused, reset, DNS failure, or an unreadable body."""


class TimeoutError(ConnectionError, builtins.TimeoutError):
    """No answer within the timeout."""


class ProtocolError(SdkError):
    """A 2xx answer the client cannot use (wrong shape, dtype or digest field)."""


PROBLEM_STATUS = {
    "invalid_request": 400,
    "invalid_reference": 400,
    "invalid_safetensors": 400,
    "shape_mismatch": 400,
    "non_finite_gradient": 422,
    "non_finite_result": 422,
    "invalid_hyperparameters": 400,
    "invalid_weights": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "optimizer_not_found": 404,
    "version_not_found": 404,
    "session_not_found": 404,
    "key_not_found": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "not_acceptable": 406,
    "digest_mismatch": 409,
    "step_conflict": 409,
    "replay_mismatch": 409,
    "version_conflict": 409,
    "idempotency_conflict": 409,
    "last_admin_key": 409,
    "payload_too_large": 413,
    "too_many_coordinates": 413,
    "unsupported_media_type": 415,
    "headers_too_large": 431,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "internal_error": 500,
    "overloaded": 503,
}

_BY_CODE = {"digest_mismatch": DigestMismatchError, "step_conflict": StepConflictError}


def _by_status(status: int) -> type:
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFoundError
    if status == 409:
        return ConflictError
    if status == 429:
        return RateLimitError
    if status >= 500:
        return ServerError
    if status in (400, 405, 406, 413, 415, 422):
        return ValidationError
    return ApiError


def error_class_for(code: Optional[str], status: int) -> type:
    """The error class for a problem code, else for the HTTP status (a code may come with more than
    one: quota_exceeded is 429 or 403)."""
    return _BY_CODE.get(code or "", _by_status(status))
