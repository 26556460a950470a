"""boto3 clients for an environment: the normal credential chain on AWS, the emulator in the lab."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from ops.config import Environment
from ops.errors import OpsError

HOOK_EVENTS = ("before-call", "after-call")
_HOOKS: list[tuple[str, Callable[..., Any]]] = []
_CLIENTS: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, s3={"addressing_style": "path"})
# S3 calls sign with SigV4 anyway; presigned URLs would otherwise use SigV2, which newer
# regions refuse.
_SERVICE_CONFIG = {"s3": _CONFIG.merge(Config(signature_version="s3v4"))}


def emulator_url() -> str:
    """The lab's AWS API emulator; OpsError when the lab is not up."""
    from ops.lab.emulator import Emulator
    from ops.lab.state import LabState

    url = Emulator(LabState.current()).url()
    if not url:
        raise OpsError("the lab's AWS emulator is not running", hint="run: inv lab.up")
    return url


@cache
def _session(kind: str, region: str, profile: str | None) -> boto3.Session:
    if kind == "lab":
        return boto3.Session(aws_access_key_id="lab", aws_secret_access_key="lab",
                             region_name=region)
    return boto3.Session(profile_name=profile, region_name=region)


def client(env: Environment, service: str) -> Any:
    """A boto3 client for `service` in the environment's account and region, made once per
    target (kind, region, profile, endpoint) and shared: boto3 clients are thread-safe, the
    sessions that make them are not."""
    if env.kind == "lab":
        from ops.lab.emulator import Emulator
        from ops.lab.state import LabState

        endpoints: tuple[Any, ...] = (Emulator(LabState.current()).recorded(),)
    else:
        endpoints = tuple(sorted((k, v) for k, v in os.environ.items()
                                 if k.startswith("AWS_ENDPOINT_URL")))
    key = (env.kind, env.aws.region, env.aws.profile, endpoints, service)
    with _LOCK:
        if key not in _CLIENTS:
            endpoint = emulator_url() if env.kind == "lab" else None
            session = _session(env.kind, env.aws.region, env.aws.profile)
            made = session.client(service, endpoint_url=endpoint,
                                  config=_SERVICE_CONFIG.get(service, _CONFIG))
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
