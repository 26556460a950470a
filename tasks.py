"""Invoke entry point: `inv --list` shows every task, `inv --help TASK` explains one."""

from ops.tasks import namespace

ns = namespace()
