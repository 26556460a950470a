"""What every task shares: its flags, --env selection, loading config, the providers, clean
failure, and the parsing of option values."""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import invoke
from botocore.exceptions import BotoCoreError, ClientError
from invoke import Context, Exit

from ops import config, console, provider
from ops.approval import Approval
from ops.aws import failures, session
from ops.config import Environment
from ops.errors import FAILED, INTERRUPTED, PENDING, OpsError
from ops.provider import Provider
from ops.stack import audit

F = TypeVar("F", bound=Callable[..., Any])

ENV_HELP = "environment to act on: config/NAME.yml (default: $OPS_ENV, else lab)"

# The only short flags: each means the same in every task that has the long one.
SHORT_FLAGS = {"yes": "y"}

# Exit statuses (FAILED, PENDING, INTERRUPTED…): the table is ops.errors.EXIT_CODES.

PLAN_HELP = "show the plan and change nothing; exit 2 when changes are pending, 0 when none"
YES_HELP = "apply without asking (needed when no terminal is there to answer)"
JSON_HELP = "print the plan and the outcome as JSON on stdout (messages go to stderr)"


class OpsTask(invoke.Task):
    """A task whose flags are spelled out: no short flag Invoke would pick from the letters of
    a name (`-f` meant --force in one task and --from in another), only SHORT_FLAGS."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "auto_shortflags": False})

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        if name in SHORT_FLAGS:
            opts["names"].append(SHORT_FLAGS[name])
        return opts


task = functools.partial(invoke.task, klass=OpsTask)


def operation(fn: F) -> F:
    """A task that changes things: it refuses Invoke's --dry, which could not hold its changes
    back, and fails with one clear message and a non-zero exit, never a traceback."""
    return _guarded(fn, changes=True)


def read_only(fn: F) -> F:
    """A task that only looks: as `operation`, but --dry changes nothing about it."""
    return _guarded(fn, changes=False)


def _guarded(fn: F, *, changes: bool) -> F:
    """`fn` with every expected failure as one message and its exit code (ops.errors'
    EXIT_CODES): OpsError, AWS's failures (ops.aws.failures), Ctrl-C. A task that changes
    things is named for the audit entry an interruption writes on its host."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        code = FAILED
        named = audit.TASK.set(fn.__name__.replace("_", "-") if changes else None)
        try:
            if args and isinstance(args[0], Context):
                _refuse_invoke_flags(args[0].config.run, fn, changes=changes)
            return fn(*args, **kwargs)
        except OpsError as exc:
            console.error(str(exc))
            code = exc.code
        except (BotoCoreError, ClientError, RuntimeError) as exc:
            explained = failures.explain(exc, session.profile())
            if explained is None:  # every botocore failure has a message; other errors not
                raise
            console.error(str(explained))
            code = explained.code
        except KeyboardInterrupt:
            console.error("interrupted: run the same command again to converge from here")
            code = INTERRUPTED
        finally:
            audit.TASK.reset(named)
        raise Exit(code=code)

    return wrapper  # type: ignore[return-value]


def _refuse_invoke_flags(run: Any, fn: Callable[..., Any], *, changes: bool) -> None:
    """Invoke's --echo and --warn-only act on commands Invoke runs, and tasks run none: they
    are refused, not ignored. --dry (which implies --echo) is refused by a task that changes
    things; a task that only looks runs as it would without it."""
    if run.dry:
        if changes:
            raise _dry_refused(fn)
        return
    for flag, given in (("--echo", run.echo), ("--warn-only", run.warn)):
        if given:
            raise OpsError(f"{flag} has no effect on this toolkit's tasks: they run no local "
                           "commands through Invoke", hint=f"run the task without {flag}")


def _dry_refused(fn: Callable[..., Any]) -> OpsError:
    """Invoke's --dry only holds back shell commands run through it; tasks act through AWS,
    SSH and Docker APIs, so they refuse it rather than change things under it."""
    if "plan" in inspect.signature(fn).parameters:
        hint = f"to see what it would change, run: inv {fn.__name__.replace('_', '-')} --plan"
    else:
        hint = "this task has no preview: run it without --dry when you mean it"
    return OpsError("--dry cannot hold back this task's changes: it acts through AWS, SSH and "
                    "Docker, not through commands Invoke runs", hint=hint)


@contextmanager
def approving(*, plan: bool, yes: bool, json_: bool) -> Iterator[Approval]:
    """The convention around a task that changes things: its Approval, the plan and outcome as
    JSON on stdout with --json (an error too), and exit 2 for --plan with changes pending."""
    console.json_mode(json_)
    approval = Approval(plan_only=plan, yes=yes)
    try:
        yield approval
    except OpsError as exc:
        approval.outcome(error=exc.message)
        raise
    finally:
        if json_:
            console.emit_json(approval.record)
    if plan and approval.pending:
        raise Exit(code=PENDING)


def whole(value: str, option: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    """An option's whole number, from `minimum` (to `maximum`); an OpsError naming the option
    if not."""
    try:
        number: int | None = int(value)
    except ValueError:  # also Python's limit on digits: nobody means a number that long
        number = None
    if number is None or number < minimum:
        raise OpsError(f"--{option} takes a whole number, {minimum} or more "
                       f"(got {config.shown(value)})")
    if maximum is not None and number > maximum:
        raise OpsError(f"--{option} takes a whole number, at most {maximum} "
                       f"(got {config.shown(value)})")
    return number


def seconds(value: str, option: str) -> float:
    """An option's duration in seconds, 0 or more; an OpsError naming the option if not."""
    try:
        number: float | None = float(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or number < 0:
        raise OpsError(f"--{option} takes a number of seconds, 0 or more (got {value!r})")
    return number


def choice(value: str, option: str, allowed: tuple[str, ...]) -> str:
    """An option's value if it is one of `allowed`; an OpsError listing them if not."""
    if value not in allowed:
        raise OpsError(f"--{option} takes {', '.join(allowed[:-1])} or {allowed[-1]} "
                       f"(got {value!r})")
    return value


def release_name(value: str | None, option: str) -> str | None:
    """An option's release name (as stack.release takes), None when not given; an OpsError
    naming the option if it is not one (a path such as ../x, a shell word)."""
    if value is not None and not re.fullmatch(config.RELEASE, value):
        raise OpsError(f"--{option} takes {config.RELEASE_WHAT} (got {config.shown(value)})")
    return value


def _lab() -> Provider:
    from ops.lab.provider import LabProvider  # the Docker SDK loads only for the lab

    return LabProvider()


provider.register("lab", _lab)


def load(env: str | None) -> Environment:
    return config.load(env)
