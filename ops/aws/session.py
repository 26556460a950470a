"""boto3 clients for an environment, from the session and endpoint its provider gives."""

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
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, s3={"addressing_style": "path"})
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
            session_key = (type(where), env.aws.region, env.aws.profile)
            if session_key not in _SESSIONS:
                _SESSIONS[session_key] = where.aws_session(env.aws.region, env.aws.profile)
            made = _SESSIONS[session_key].client(  # type: ignore[call-overload]  # any service
                service, endpoint_url=endpoint, config=_SERVICE_CONFIG.get(service, _CONFIG))
            for event in HOOK_EVENTS:
                made.meta.events.register(event, _dispatch)
            _CLIENTS[key] = made
        return _CLIENTS[key]


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
