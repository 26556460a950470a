"""Host facts parsing and the bootstrap plan, per OS and Docker source: pure."""

from __future__ import annotations

import pytest

from ops.config import Environment
from ops.errors import OpsError
from ops.host import bootstrap, docker, logrotate, system
from ops.host.facts import Container, Facts, parse


def env(**host: object) -> Environment:
    return Environment.model_validate({
        "name": "t", "domain": "openlmis.example.org",
        "database": {"master_password": "env:X"}, "mail": {"from_address": "a@b.org"},
        "host": host})


def up_to_date(os_id: str = "debian", version: str = "13", source: str = "distro") -> Facts:
    os = f"{os_id}-{version}"
    return Facts(os_id=os_id, os_version=version,
                 packages=frozenset([*docker.packages(os, source), "logrotate",
                                     system.postgres_client(os, "17")]),
                 docker_enabled=True, docker_active=True, compose_version="2.26.1",
                 daemon_json_sha256=system.daemon_json_sha256(),
                 logrotate_sha256=logrotate.wanted_sha256("openlmis"),
                 logrotate_timer="enabled/active", swap_bytes=4 << 30)


def test_parse_reads_every_fact() -> None:
    facts = parse("os_id=debian\nos_version=\"13\"\npackage=docker.io\npackage=docker-cli\n"
                  "docker_enabled=enabled\ndocker_active=active\ncompose_version=2.26.1\n"
                  "daemon_json=abc\nswap_bytes=0\nsession_pid=249\nboot_id=b-1\n"
                  "current=1-aaa\nrelease=1-aaa\nrelease=2-bbb\n"
                  "container=nginx\trunning\tUp 2 minutes (healthy)\n"
                  "image=lab/app:1\tsha256:1\nimage=lab/other:1\t\n")
    assert facts.os == "debian-13"
    assert facts.packages == {"docker.io", "docker-cli"}
    assert facts.docker_enabled and facts.docker_active
    assert facts.releases == ("1-aaa", "2-bbb") and facts.current == "1-aaa"
    assert facts.containers == (Container("nginx", "running", "Up 2 minutes (healthy)"),)
    assert facts.images == {"lab/app:1": "sha256:1"}
    assert facts.session_pid == 249


def test_up_to_date_host_plans_nothing() -> None:
    assert bootstrap.plan(env(docker_source="distro"), up_to_date()) == []


def test_bare_debian_13_with_distro_packages() -> None:
    changes = bootstrap.plan(env(docker_source="distro", swap_gb=2),
                             Facts(os_id="debian", os_version="13"))
    lines = [c.line() for c in changes]
    assert lines[0].startswith("~ /etc/docker/daemon.json")
    assert lines[1] == "+ packages: docker.io docker-cli docker-compose postgresql-client-17"
    assert "+ /swapfile: 2 GiB swap" in lines
    steps = [s[1] for s in changes[1].payload.steps]
    assert not any("download.docker.com" in s for s in steps)
    # daemon.json is in place before the engine is installed: no restart needed
    assert all(s[0] != "run" or "restart" not in s[1] for s in changes[0].payload.steps)


def test_official_repository_on_ubuntu_and_pgdg_when_the_distro_lacks_the_major() -> None:
    changes = bootstrap.plan(env(), Facts(os_id="ubuntu", os_version="24.04"))
    packages = next(c for c in changes if c.target == "packages")
    assert packages.detail == ("docker-ce docker-ce-cli containerd.io docker-compose-plugin "
                               "postgresql-client-17")
    script = " ".join(s[1] for s in packages.payload.steps)
    assert "download.docker.com/linux/ubuntu noble stable" in script
    assert "noble-pgdg main" in script


def test_amazon_linux_gets_the_compose_plugin_with_a_checksum() -> None:
    changes = bootstrap.plan(env(), Facts(os_id="amzn", os_version="2023"))
    assert next(c for c in changes if c.target == "packages").detail == "docker postgresql17"
    plugin = next(c for c in changes if c.target == "docker compose plugin")
    assert "sha256sum -c" in plugin.payload.steps[-1][1]


def test_changed_daemon_json_restarts_a_running_engine() -> None:
    facts = up_to_date()
    changes = bootstrap.plan(env(docker_source="distro"),
                             Facts(**{**facts.__dict__, "daemon_json_sha256": "old"}))
    assert [c.target for c in changes] == ["/etc/docker/daemon.json"]
    assert changes[0].payload.steps[-1] == ("run", "systemctl restart docker")


def test_syslog_rotation_is_installed_once_and_mended_when_it_drifts() -> None:
    facts = up_to_date()
    rotation = bootstrap.plan(env(docker_source="distro"),
                              Facts(**{**facts.__dict__, "packages": facts.packages - {"logrotate"},
                                       "logrotate_sha256": ""}))
    assert [c.line() for c in rotation] == [f"~ {logrotate.CONF_PATH}: {logrotate.DETAIL}"]
    steps = rotation[0].payload.steps
    assert any(s[0] == "run" and "install" in s[1] and "logrotate" in s[1] for s in steps)
    written = {s[1]: s[2].decode() for s in steps if s[0] == "put"}
    text = written[logrotate.CONF_PATH]
    assert "/var/lib/docker/volumes/openlmis_syslog/_data/messages\n" in text
    assert "copytruncate" in text and "maxsize 100M" in text
    assert "OnCalendar=hourly" in written[logrotate.TIMER_DROPIN]
    stopped = Facts(**{**facts.__dict__, "logrotate_timer": "enabled/inactive"})
    mend = bootstrap.plan(env(docker_source="distro"), stopped)[0].payload.steps
    assert not any("apt-get" in s[1] for s in mend)  # installed already: files and timer only
    assert mend[-1][1].startswith("systemctl daemon-reload")
    read = parse("logrotate=abc\nlogrotate_timer=enabled/active\n")
    assert (read.logrotate_sha256, read.logrotate_timer) == ("abc", "enabled/active")


def test_unsupported_os_and_debian_12_without_compose_package() -> None:
    with pytest.raises(OpsError, match="does not support"):
        bootstrap.plan(env(), Facts(os_id="centos", os_version="7"))
    with pytest.raises(OpsError, match="docker_source: official"):
        bootstrap.plan(env(docker_source="distro"), Facts(os_id="debian", os_version="12"))


def test_swap_is_not_touched_when_some_exists_or_none_is_wanted() -> None:
    facts = Facts(**{**up_to_date().__dict__, "swap_bytes": 0})
    assert bootstrap.plan(env(docker_source="distro", swap_gb=0), facts) == []


def test_fingerprints_from_an_ec2_console() -> None:
    from ops.host.connect import console_fingerprints

    text = ("noise\n-----BEGIN SSH HOST KEY FINGERPRINTS-----\n"
            "256 SHA256:abcDEF0123 root@ip-10-0-0-1 (ECDSA)\n"
            "256 SHA256:xyz987 root@ip-10-0-0-1 (ED25519)\n"
            "-----END SSH HOST KEY FINGERPRINTS-----\nmore noise\n")
    assert console_fingerprints(text) == ["ecdsa SHA256:abcDEF0123", "ssh-ed25519 SHA256:xyz987"]
    assert console_fingerprints("nothing printed") == []


def test_packages_install_with_the_os_package_manager() -> None:
    pgdg = system.postgres_repository_commands("ubuntu-24.04", "17")
    assert any("apt.postgresql.org" in c and "noble-pgdg" in c for c in pgdg)
    assert system.install_commands("ubuntu-24.04", ["postgresql-client-17"], pgdg)[-3:] == [
        pgdg[-1], f"{system.APT} update -qq",
        f"{system.APT} install -y -qq --no-install-recommends postgresql-client-17"]
    assert system.install_commands("amzn-2023", ["postgresql17"], pgdg) == [
        "dnf install -y -q postgresql17"]
    assert system.postgres_repository_commands("debian-13", "17") == []
