"""A lab host deployed to with `inv deploy`, as an operator runs it (its own config directory)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ops.config import ROOT
from ops.host.connect import connect
from ops.lab.hosts import LabHost
from ops.lab.lab import Lab

ADMIN_PASSWORD = "Adm1n-S3cret-Value-For-Tests"


@dataclass(frozen=True)
class Target:
    host: LabHost
    config_dir: Path
    env: str
    database: str  # its name; the stack's role is <name>_app
    stack: str  # the config's stack section, as YAML flow mapping

    def write_config(self, **host_overrides: str) -> None:
        host = {"address": self.host.address, "ssh_user": "root",
                "ssh_private_key": str(self.host.key), "known_hosts": str(self.host.known_hosts),
                "docker_source": "distro", "swap_gb": 0, **host_overrides}
        text = "\n".join([
            "kind: lab", "domain: openlmis.lab.internal", "aws: {region: us-east-1}",
            f"host: {json.dumps(host)}",
            f"database: {{tier: dev, name: {self.database}, master_password: "
            f"'lab:db_master_password', app_username: {self.role}, "
            "app_password: 'lab:db_app_password'}",
            "mail: {from_address: noreply@openlmis.lab.internal, smtp_host: mail.lab.internal}",
            f"stack: {self.stack}", "backups: {create_bucket: true}",
        ])
        (self.config_dir / f"{self.env}.yml").write_text(text + "\n")

    @property
    def role(self) -> str:
        return f"{self.database}_app"

    def fresh_database(self, lab: Lab) -> None:
        """The database empty, made by the master, as on a fresh RDS instance; no role yet."""
        with lab.db_connection("postgres") as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {self.role}")
            conn.execute(f"CREATE DATABASE {self.database}")

    def inv(self, *args: str, timeout: float = 600,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """`inv` run as an operator runs it; `input`: its standard input (not a terminal)."""
        return subprocess.run(self.command(*args), cwd=ROOT, env=self.environ(),
                              capture_output=True, text=True, timeout=timeout, input=input)

    def on_terminal(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`inv` run on a terminal of its own, as an operator types it (util-linux `script`
        gives it a pseudo-terminal); its output as the terminal shows it."""
        return subprocess.run(["script", "-qec", shlex.join(self.command(*args)), "/dev/null"],
                              cwd=ROOT, env=self.environ(), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=120)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), cwd=ROOT, env=self.environ(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "invoke", args[0], "--env", self.env, *args[1:]]

    def environ(self) -> dict[str, str]:
        return {**os.environ, "OPS_CONFIG_DIR": str(self.config_dir),
                "OPS_TEST_ADMIN_PASSWORD": ADMIN_PASSWORD, "COLUMNS": "200"}

    def sh(self, command: str) -> str:
        with connect(self.host.address, user=self.host.user, key=self.host.key,
                     known_hosts=self.host.known_hosts) as conn:
            return conn.run(command, hide=True, warn=True).stdout

    def api_health(self) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://{self.host.address}/api/health", timeout=5) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    def audit(self) -> list[dict]:
        return [json.loads(line) for line in
                self.sh("cat /opt/openlmis/audit.log 2>/dev/null").splitlines()]

    def containers(self) -> str:
        """Every container of the stack with its id and start time."""
        return self.sh("docker ps -aq --filter label=com.docker.compose.project=openlmis "
                       "| xargs -r docker inspect -f '{{.Name}} {{.Id}} {{.State.StartedAt}}' "
                       "| sort")


def database_config(host: LabHost, database: str) -> str:
    """An environment's config for the database tasks: the lab host, `database` on the lab
    PostgreSQL, a bucket of its own."""
    return f"""
kind: lab
domain: openlmis.lab.internal
aws: {{region: us-east-1}}
host: {{address: "{host.address}", ssh_user: root, ssh_private_key: "{host.key}",
        known_hosts: "{host.known_hosts}"}}
database: {{name: {database}, master_password: "lab:db_master_password"}}
mail: {{from_address: noreply@openlmis.lab.internal}}
backups: {{keep_last: 20, dump_jobs: 2, create_bucket: true}}
"""


def ctrl_c_reaches_it() -> None:
    """In the child: SIGINT as a terminal delivers it, even when this run was started in the
    background, whose shell has it ignored (and Python then installs no handler for it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
