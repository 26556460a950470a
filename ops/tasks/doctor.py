"""doctor: what the tasks depend on, checked before anything else (read-only)."""

from invoke import Exit

from ops import console
from ops.tasks.common import ENV_HELP, load, read_only, task


@task(help={"env": ENV_HELP, "json": "print the checks as JSON on stdout (messages go to stderr)"})
@read_only
def doctor(c, env=None, json_=False):
    """Check AWS credentials (and when they expire), the account and region, the service
    quotas provision needs, SES's sandbox, your address in admin_cidrs, SSH and the host key,
    and the database from the host. Exit 1 when a check fails (3: the credentials)."""
    from ops.doctor import checks, diagnose

    console.json_mode(json_)
    environment = load(env)
    report = diagnose.diagnose(environment)
    diagnose.show(report)
    if json_:
        console.emit_json(diagnose.as_json(environment, report))
    if code := checks.exit_code(report.checks):
        raise Exit(code=code)


TASKS = [doctor]
