"""The embedded local lab: an AWS emulator, SSH hosts and PostgreSQL on this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ops import console
from ops.errors import OpsError
from ops.tasks.common import operation, read_only, task

if TYPE_CHECKING:
    from ops.lab.lab import Lab


@task
@operation
def up(c):
    """Start the lab (AWS emulator, network, PostgreSQL); fast when it already runs."""
    from ops.lab.lab import Lab

    Lab.connect().up()
    _show(Lab.connect())


@task(help={"images": "also remove the cached host images (rebuilt on the next up)"})
@operation
def down(c, images=False):
    """Remove everything the lab made: containers, network, emulator, its files."""
    from ops.lab.lab import Lab

    removed = Lab.connect().down(images_too=images)
    for item in removed:
        console.say(f"- removed {item}", "red")
    console.ok("lab is down" if removed else "lab was not up: no changes")


@task
@read_only
def status(c):
    """Show what the lab runs, with addresses."""
    from ops.lab.lab import Lab

    _show(Lab.connect())


@task(help={"swarm": "on a Docker Swarm of lab hosts (host.count 3) instead of one host"})
@operation
def rehearse(c, swarm=False):
    """The whole lifecycle on the lab, step by step, ending with a table of results."""
    from ops.lab import rehearsal

    results = rehearsal.rehearse(swarm=swarm)
    rehearsal.show(results)
    failed = [r.step for r in results if r.ok is False]
    if failed:
        raise OpsError(f"the rehearsal failed at: {', '.join(failed)}")
    console.ok(f"all {len(results)} steps passed")


def _show(lab: Lab) -> None:
    rows = lab.status()
    console.table(f"lab {lab.state.name} ({lab.state.dir})", ["component", "state", "address"],
                  [(r["name"], r["state"], r["address"]) for r in rows])
