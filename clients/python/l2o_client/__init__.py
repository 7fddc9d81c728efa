"""l2o client for PyTorch: learned optimizers as a service (standard library + torch only)."""
from .client import Client, RawResponse, Resolved, RetryPolicy, parse_retry_after, urllib_transport
from .errors import (
    ApiError,
    AuthError,
    ConflictError,
    ConnectionError,
    DigestMismatchError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    SdkError,
    ServerError,
    StepConflictError,
    TimeoutError,
    ValidationError,
)
from .optimizer import RemoteOptimizer, shard_ranges

__all__ = [
    "ApiError",
    "AuthError",
    "Client",
    "ConflictError",
    "ConnectionError",
    "DigestMismatchError",
    "NotFoundError",
    "ProtocolError",
    "RateLimitError",
    "RawResponse",
    "RemoteOptimizer",
    "Resolved",
    "RetryPolicy",
    "SdkError",
    "ServerError",
    "StepConflictError",
    "TimeoutError",
    "ValidationError",
    "parse_retry_after",
    "shard_ranges",
    "urllib_transport",
]
