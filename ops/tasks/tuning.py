"""size-db and tune-db: the database's class and parameters."""

from ops import console
from ops.config import MAX_PRODUCTS, MAX_REQUISITIONS
from ops.errors import OpsError
from ops.tasks.common import (
    ENV_HELP,
    JSON_HELP,
    PLAN_HELP,
    YES_HELP,
    approving,
    load,
    operation,
    read_only,
    task,
    whole,
)


@task(help={"env": ENV_HELP,
            "products": "products, full and non-full supply (default: database.workload)",
            "requisitions": "requisitions, historical plus the next two periods' planned "
                            "(default: database.workload)",
            "reports_often": "reports run often",
            "idle_most_of_day": "the system idles most of the day (burstable classes)",
            "busy_all_day": "the system is busy all day (fixed-performance classes)",
            "json": "print the workload and the recommendation as JSON only"})
@read_only
def size_db(c, env=None, products=None, requisitions=None, reports_often=False,
            idle_most_of_day=False, busy_all_day=False, json_=False):
    """Recommend the database tier, instance class and host size for a workload.

    Flags override the environment's database.workload; each choice is explained in one line.
    """
    from ops.db import sizing
    from ops.stack import planned

    overrides: dict[str, int | bool] = {
        name: whole(value, name, maximum=most) for name, value, most in (
            ("products", products, MAX_PRODUCTS),
            ("requisitions", requisitions, MAX_REQUISITIONS))
        if value is not None}
    if reports_often:
        overrides["reports_often"] = True
    if idle_most_of_day and busy_all_day:
        raise OpsError("--idle-most-of-day and --busy-all-day contradict each other")
    if idle_most_of_day or busy_all_day:
        overrides["idle_most_of_day"] = idle_most_of_day
    console.json_mode(json_)
    environment = load(env)
    base = environment.database.workload
    workload = base.model_validate({**base.model_dump(), **overrides})
    recommended = sizing.recommend(environment, workload, planned.services(environment))
    if json_:
        console.emit_json({"workload": workload.model_dump(), "recommendation": [
            {"choice": c.what, "value": c.value, "why": c.why} for c in recommended]})
        return
    console.say(f"{environment.name}: {workload.products} products, {workload.requisitions} "
                f"requisitions, reports {'often' if workload.reports_often else 'rarely'}, "
                f"{'idle most of the day' if workload.idle_most_of_day else 'busy all day'}",
                "bold")
    console.table("recommendation", ["choice", "value", "why"],
                  [(c.what, c.value, c.why) for c in recommended])


@task(help={"env": ENV_HELP, "plan": PLAN_HELP, "yes": YES_HELP, "json": JSON_HELP,
            "reboot": "reboot (lab: restart) the database when a static parameter is pending "
                      "(a short outage; part of the plan it asks you to approve)"})
@operation
def tune_db(c, env=None, plan=False, yes=False, json_=False, reboot=False):
    """Set the database's parameters for its class and the stack, dynamic vs static aware."""
    from ops.db.tune import tune

    with approving(plan=plan, yes=yes, json_=json_) as approval:
        tune(load(env), reboot=reboot, approval=approval)


TASKS = [size_db, tune_db]
