"""The Reference Distribution's compose files, validated by Docker Compose on a lab host.

No registry is reachable here, so the stack is not started: `docker compose config` checks the
files as deploy would ship them, and the memory limits are checked against instance types.
"""

from __future__ import annotations

import json

from ops import config
from ops.host.connect import connect
from ops.host.remote import Remote
from ops.lab.lab import Lab
from ops.stack import compose, override, release, settings, sizing
from ops.targets import DatabaseTarget

DIR = "/tmp/ref-distro-check"


def test_ref_distro_validates_and_its_limits_are_checked_against_the_instance(lab: Lab) -> None:
    host = lab.host("refdistro", docker_ready=True)
    stack = compose.stack_dir("ref-distro")
    env = config.load(path=config.ROOT / "config" / "example.yml")
    files = release.stack_files(stack)
    dotenv = settings.dotenv(compose.release_env("ref-distro", "3.19.2"), env,
                             override.compose_file(files))
    files[".env"] = dotenv.encode()
    files["settings.env"] = settings.render(settings.values(
        env, (stack / "settings.env.template").read_text(),
        DatabaseTarget("db.internal", 5432, "open_lmis", "postgres"),
        {"database.app_password": "not-a-real-one"}))
    with connect(host.address, user=host.user, key=host.key,
                 known_hosts=host.known_hosts) as conn:
        remote = Remote(conn, host.address)
        remote.run(f"rm -rf {DIR} && mkdir -p {DIR}/config/log")
        for path, data in files.items():
            remote.put(f"{DIR}/{path}", data, 0o600)
        rendered = json.loads(remote.run(f"cd {DIR} && docker compose -p check config "
                                         "--format json"))
    found = rendered["services"]
    ours = compose.services({k: v.decode() for k, v in files.items()
                             if k in compose.COMPOSE_FILES}, compose.parse_env(dotenv))
    assert sorted(found) == sorted(s.name for s in ours)
    assert "db" not in found  # RDS replaces it
    pins = compose.parse_env(dotenv)
    assert found["requisition"]["image"] == f"openlmis/requisition:{pins['OL_REQUISITION_VERSION']}"
    assert found["nginx"]["image"] == f"openlmis/nginx:{pins['OL_NGINX_VERSION']}"
    assert all(s["environment"]["spring_profiles_active"] == "production"
               for s in found.values() if "environment" in s and "spring_profiles_active" in
               s["environment"])
    compose_total = sum(int(s.get("mem_limit", 0)) for s in found.values())
    assert abs(compose_total - sizing.total_limits(ours)) < 1024**2
    assert 11 * 1024**3 < compose_total < 12 * 1024**3
    problem = sizing.fit(ours, env.host.instance_type)
    assert problem and "more than m6i.large offers (8 GiB" in problem
    assert sizing.fit(ours, "m6i.2xlarge") is None
