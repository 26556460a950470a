"""No-op re-deploy, side by side on ONE lab host: this toolkit vs Ansible (docker_compose_v2).

Run (Ansible goes into .venv for the benchmark only, never into pyproject):
    .venv/bin/pip install ansible
    OPS_LAB_NAME=deploylab OPS_LAB_DIR=/tmp/deploylab .venv/bin/python bench/deploy/run.py

Brings the lab up, deploys the lab stack once on a Docker-ready host (converged state), then
times N no-op runs of each tool (wall clock, median) and checks both report nothing changed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ops import provider
from ops.config import ROOT
from ops.lab.lab import Lab
from ops.lab.provider import LabProvider

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
ENV = "bench"


def config(host, directory: Path) -> None:
    (directory / f"{ENV}.yml").write_text(f"""kind: lab
domain: openlmis.lab.internal
aws: {{region: us-east-1}}
host: {{address: {host.address}, ssh_user: root, ssh_private_key: {host.key},
        known_hosts: {host.known_hosts}, docker_source: distro, swap_gb: 0}}
database: {{tier: dev, master_password: 'lab:db_master_password',
           app_password: 'lab:db_app_password'}}
mail: {{from_address: noreply@openlmis.lab.internal, smtp_host: mail.lab.internal}}
stack: {{name: lab, release: '1', https: false, health_stable_s: 3}}
""")


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{run.stdout}{run.stderr}")
    return elapsed, run.stdout + run.stderr


def main() -> None:
    provider.register("lab", LabProvider)
    lab = Lab.connect()
    lab.up()
    host = lab.host("bench", docker_ready=True)
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o700)
        config(host, work)
        env = {**os.environ, "OPS_CONFIG_DIR": str(work), "COLUMNS": "200"}
        inv = [sys.executable, "-m", "invoke", "deploy", "--env", ENV]
        timed([*inv, "--push-images"], env)  # converge once

        # the same files the toolkit shipped, for Ansible to "apply" again
        files = work / "files"
        files.mkdir(mode=0o700)
        from ops import config as cfg
        from ops.host import system
        from ops.stack import deploy as stack

        release = stack.desired(cfg.load(path=work / f"{ENV}.yml"), "1")
        for name in ("docker-compose.yml", ".env", "settings.env"):
            (files / name).write_bytes(release.files[name])
            (files / name).chmod(0o600)
        (files / "daemon.json").write_bytes(system.daemon_json())
        (work / "inventory.ini").write_text(
            f"[lab]\n{host.address} ansible_user=root ansible_ssh_private_key_file={host.key} "
            f"ansible_ssh_common_args='-o UserKnownHostsFile={host.known_hosts}' "
            "ansible_python_interpreter=/usr/bin/python3\n")
        playbook = [str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                    str(work / "inventory.ini"), str(Path(__file__).parent / "playbook.yml"),
                    "-e", json.dumps({"release_id": release.id, "files_dir": str(files)})]
        timed(playbook, {**env, "ANSIBLE_HOST_KEY_CHECKING": "True"})  # warm-up

        toolkit, ansible = [], []
        for _ in range(RUNS):
            elapsed, out = timed(inv, env)
            assert "no changes" in out, out
            toolkit.append(elapsed)
            elapsed, out = timed(playbook, env)
            assert "changed=0" in out, out
            ansible.append(elapsed)
    a, b = statistics.median(toolkit), statistics.median(ansible)
    print(f"no-op re-deploy on {host.address}, {RUNS} runs each (median wall time):")
    for name, median, runs in (("toolkit  (inv deploy)", a, toolkit),
                               ("ansible  (ansible-playbook)", b, ansible)):
        print(f"  {name:28} {median:6.2f} s   runs: {' '.join(f'{t:.2f}' for t in runs)}")
    print(f"  ratio ansible/toolkit        {b / a:6.1f}x  (target: at least 3x, toolkit < 5 s)")


if __name__ == "__main__":
    main()
