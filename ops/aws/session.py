"""boto3 clients for an environment, from the session and endpoint its provider gives.

Every client retries in botocore's standard mode (exponential backoff with jitter on
throttling, transient and timeout errors, up to MAX_ATTEMPTS calls in all), connects within
CONNECT_TIMEOUT and waits READ_TIMEOUT for an answer; what still fails after that is one
message (ops.aws.failures)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from ops import provider
from ops.config import Environment

HOOK_EVENTS = ("before-call", "after-call")
_HOOKS: list[tuple[str, Callable[..., Any]]] = []
_CLIENTS: dict[tuple[Any, ...], Any] = {}
_SESSIONS: dict[tuple[Any, ...], boto3.Session] = {}
_LOCK = threading.Lock()
_PROFILES: list[str | None] = []  # the profiles of the sessions made, latest last
MAX_ATTEMPTS = 8  # the first call and 7 retries: with standard backoff, up to ~1 min
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                 connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                 tcp_keepalive=True, s3={"addressing_style": "path"})
# S3 calls sign with SigV4 anyway; presigned URLs would otherwise use SigV2, which newer
# regions refuse.
_SERVICE_CONFIG = {"s3": _CONFIG.merge(Config(signature_version="s3v4"))}


def client(env: Environment, service: str) -> Any:
    """A boto3 client for `service` in the environment's account and region, from its
    provider's session and endpoint, made once per target and shared: boto3 clients are
    thread-safe, the sessions that make them are not."""
    where = provider.of(env)
    endpoint = where.aws_endpoint()
    endpoints = (endpoint,) if endpoint else tuple(sorted(
        (k, v) for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL")))
    key = (type(where), env.aws.region, env.aws.profile, endpoints, service)
    with _LOCK:
        if key not in _CLIENTS:
            made = _session(env, where).client(  # type: ignore[call-overload]  # any service
                service, endpoint_url=endpoint, config=_SERVICE_CONFIG.get(service, _CONFIG))
            for event in HOOK_EVENTS:
                made.meta.events.register(event, _dispatch)
            _CLIENTS[key] = made
        return _CLIENTS[key]


def boto(env: Environment) -> boto3.Session:
    """The session the environment's clients are made from (its credentials, its profile's
    configuration)."""
    with _LOCK:
        return _session(env, provider.of(env))


def _session(env: Environment, where: provider.Provider) -> boto3.Session:
    """The provider's session for the environment's region and profile, made once (hold
    _LOCK)."""
    key = (type(where), env.aws.region, env.aws.profile)
    if key not in _SESSIONS:
        _SESSIONS[key] = where.aws_session(env.aws.region, env.aws.profile)
        _PROFILES.append(env.aws.profile)
    return _SESSIONS[key]


def profile() -> str | None:
    """The AWS profile of the latest session made (for a hint such as `aws sso login`):
    aws.profile, else $AWS_PROFILE; None without either."""
    return (_PROFILES[-1] if _PROFILES else None) or os.environ.get("AWS_PROFILE")


def add_hook(event: str, handler: Callable[..., Any]) -> Callable[[], None]:
    """Call `handler` on `event` ('before-call' or 'after-call') of every client, including
    those already made; returns a function that removes it."""
    if event not in HOOK_EVENTS:
        raise ValueError(f"hooks support {HOOK_EVENTS}, not {event!r}")
    entry = (event, handler)
    _HOOKS.append(entry)
    return lambda: _HOOKS.remove(entry)


def _dispatch(event_name: str, **kwargs: Any) -> None:
    for event, handler in list(_HOOKS):
        if event_name.startswith(f"{event}."):
            handler(event_name=event_name, **kwargs)
