"""deploy, rollback, logs: a release of the compose stack on the environment's host."""

from invoke import task

from ops.tasks.common import ENV_HELP, load, not_implemented, operation


@task(help={"env": ENV_HELP, "release": "release to deploy (default: stack.release in config)",
            "plan": "print what would change and change nothing",
            "push_images": "stream images the host lacks from this machine over SSH",
            "lock_wait": "seconds to wait for another deploy's lock"})
@operation
def deploy(c, env=None, release=None, plan=False, push_images=False, lock_wait=0):
    """Install Docker on the host if needed, then release the stack behind a health gate."""
    load(env)
    not_implemented("deploy")


@task(help={"env": ENV_HELP, "to": "release to return to (default: the previous one)"})
@operation
def rollback(c, env=None, to=None):
    """Switch the host back to an earlier release and bring it up."""
    load(env)
    not_implemented("rollback")


@task(help={"env": ENV_HELP, "service": "compose service whose logs to show"})
@operation
def logs(c, service, env=None):
    """Show a service's recent logs from the host."""
    load(env)
    not_implemented("logs")


TASKS = [deploy, rollback, logs]
