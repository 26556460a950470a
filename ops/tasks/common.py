"""What every task shares: --env selection, loading config, the providers, clean failure."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)
from invoke import Exit

from ops import config, console, provider
from ops.config import Environment
from ops.errors import OpsError
from ops.provider import Provider

F = TypeVar("F", bound=Callable[..., Any])

ENV_HELP = "environment to act on: config/NAME.yml (default: $OPS_ENV, else lab)"


def operation(fn: F) -> F:
    """Turn expected failures into one clear message and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OpsError as exc:
            console.error(str(exc))
        except (NoCredentialsError, ProfileNotFound) as exc:
            console.error(f"no usable AWS credentials: {exc}\n  → configure the AWS credential "
                          "chain (aws configure, AWS_PROFILE or an instance role)")
        except NoRegionError:
            console.error("no AWS region: set aws.region in the environment's file")
        except EndpointConnectionError as exc:
            console.error(f"cannot reach the AWS API: {exc}\n  → check the region name and "
                          "the network; for the lab, run: inv lab.up")
        except ClientError as exc:
            console.error(f"AWS refused a call: {exc}")
        except KeyboardInterrupt:
            console.error("interrupted: run the same command again to converge from here")
        raise Exit(code=1)

    return wrapper  # type: ignore[return-value]


def _lab() -> Provider:
    from ops.lab.provider import LabProvider  # the Docker SDK loads only for the lab

    return LabProvider()


provider.register("lab", _lab)


def load(env: str | None) -> Environment:
    return config.load(env)
