"""size-db and tune-db: the database's class and parameters."""

from invoke import task

from ops.tasks.common import ENV_HELP, load, not_implemented, operation


@task(help={"env": ENV_HELP, "products": "products (full and non-full supply)",
            "requisitions": "requisitions, historical plus the next two periods' planned",
            "reports_often": "reports run often",
            "idle_most_of_day": "the system idles most of the day"})
@operation
def size_db(c, env=None, products=None, requisitions=None, reports_often=None,
            idle_most_of_day=None):
    """Recommend the database tier, instance class and host size for a workload."""
    load(env)
    not_implemented("size-db")


@task(help={"env": ENV_HELP, "plan": "print the parameter diff and change nothing",
            "reboot": "reboot the database when a static parameter is pending"})
@operation
def tune_db(c, env=None, plan=False, reboot=False):
    """Set the database's parameters for its class and the stack, dynamic vs static aware."""
    load(env)
    not_implemented("tune-db")


TASKS = [size_db, tune_db]
