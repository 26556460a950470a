"""provision, destroy, status: the AWS topology of an environment."""

from invoke import task

from ops.aws import topology
from ops.tasks.common import ENV_HELP, load, not_implemented, operation


@task(help={"env": ENV_HELP, "plan": "print every change and make none"})
@operation
def provision(c, env=None, plan=False):
    """Create or converge the environment's AWS resources (network, host, RDS, TLS, mail, S3)."""
    topology.provision(load(env), dry_run=plan)


@task(help={"env": ENV_HELP, "yes": "do not ask to type the environment's name",
            "force": "allow destroying a production-tier environment"})
@operation
def destroy(c, env=None, yes=False, force=False):
    """Remove the environment's AWS resources, after a final database snapshot."""
    load(env)
    not_implemented("destroy")


@task(help={"env": ENV_HELP, "json": "print machine-readable JSON only"})
@operation
def status(c, env=None, json_=False):
    """Show every resource of the environment with its id, state and endpoints."""
    load(env)
    not_implemented("status")


TASKS = [provision, destroy, status]
