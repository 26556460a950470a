"""deploy, rollback, logs: a release of the compose stack on the environment's host."""

from ops.tasks.common import (
    ENV_HELP,
    JSON_HELP,
    PLAN_HELP,
    YES_HELP,
    approving,
    load,
    operation,
    read_only,
    release_name,
    seconds,
    task,
    whole,
)

LOCK_HELP = "seconds to wait for another deploy's lock (default: fail at once)"
BREAK_HELP = "break a STALE deploy lock (its holder's connection is gone)"
MAX_LINES = 1_000_000  # logs --lines: more is a typo, not a wish


@task(help={"env": ENV_HELP, "release": "release to deploy (default: stack.release in config)",
            "plan": PLAN_HELP, "yes": YES_HELP, "json": JSON_HELP,
            "push_images": "stream images the host lacks from this machine over SSH "
                           "(default: stack.push_images)",
            "lock_wait": LOCK_HELP, "break_lock": BREAK_HELP})
@operation
def deploy(c, env=None, release=None, plan=False, yes=False, json_=False, push_images=False,
           lock_wait="0", break_lock=False):
    """Install Docker on the host if needed, then release the stack behind a health gate
    (after doctor's checks of the credentials, SSH, the host key and the database)."""
    from ops.doctor import diagnose
    from ops.stack import deploy as stack

    name, wait = release_name(release, "release"), seconds(lock_wait, "lock-wait")
    with approving(plan=plan, yes=yes, json_=json_) as approval:
        environment = load(env)
        where = diagnose.preflight(environment, diagnose.DEPLOY, approval)
        stack.deploy(environment, name=name, approval=approval, push_images=push_images,
                     lock_wait=wait, break_lock=break_lock, where=where)


@task(help={"env": ENV_HELP, "to": "release to return to (default: the previous one)",
            "plan": PLAN_HELP, "yes": YES_HELP, "json": JSON_HELP,
            "lock_wait": LOCK_HELP, "break_lock": BREAK_HELP})
@operation
def rollback(c, env=None, to=None, plan=False, yes=False, json_=False, lock_wait="0",
             break_lock=False):
    """Switch the host back to an earlier release and bring it up."""
    from ops.stack import deploy as stack

    to, wait = release_name(to, "to"), seconds(lock_wait, "lock-wait")
    with approving(plan=plan, yes=yes, json_=json_) as approval:
        stack.rollback(load(env), to=to, approval=approval, lock_wait=wait,
                       break_lock=break_lock)


@task(help={"env": ENV_HELP, "service": "compose service whose logs to show",
            "lines": "how many of the last lines (default 100)",
            "follow": "then print new lines as they come, until interrupted (Ctrl-C)"})
@read_only
def logs(c, service, env=None, lines="100", follow=False):
    """Show a service's recent logs: its containers' output and what it sent to syslog."""
    from ops.stack import logs as stack_logs

    count = whole(lines, "lines", minimum=1, maximum=MAX_LINES)
    stack_logs.logs(load(env), service, lines=count, follow=follow)


TASKS = [deploy, rollback, logs]
