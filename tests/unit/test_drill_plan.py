"""verify-backup's scratch server, planned: space, memory, image name and the commands."""

from __future__ import annotations

import shlex

import pytest

from ops import config
from ops.db import drill
from ops.db.manifest import FileEntry, Manifest
from ops.db.remote import DbHost
from ops.errors import OpsError
from ops.targets import DatabaseTarget

GIB = 1 << 30
MANIFEST = Manifest(id="dump-20261128T120000Z", time="2026-11-28T12:00:00+00:00",
                    environment="uat", database="open_lmis", server_version="17.2",
                    database_size=10 * GIB, release="3.19.2", reason="nightly",
                    tables={"a.b": 3}, files={"toc.dat": FileEntry("ab" * 32, 2 * GIB)})
FACTS = """docker=/var/lib/docker
memory=4000000
place=/var/tmp/openlmis-db/session.x1 2049 21474836480
place=/var/lib/docker 2050 16106127360
"""


def facts(dump_free: int, data_free: int, *, shared: bool = False) -> drill.Facts:
    return drill.Facts(False, True, 4 * GIB, (drill.Place("/var/tmp/w", "1", dump_free),
                                       drill.Place("/var/lib/docker", "1" if shared else "2",
                                                   data_free)))


def test_facts_are_read() -> None:
    found = drill.parse_facts(FACTS)
    assert found.docker and found.memory == 4000000 << 10
    assert found.places == (drill.Place("/var/tmp/openlmis-db/session.x1", "2049", 20 * GIB),
                            drill.Place("/var/lib/docker", "2050", 15 * GIB))
    assert not drill.parse_facts("docker=\n").docker
    assert not found.busy and drill.parse_facts("busy=1\n").busy


def test_facts_stop_at_a_running_scheduled_drill_before_removing_anything() -> None:
    command = drill.facts_command("/var/tmp/w")
    busy = command.index(f"systemctl is-active --quiet {drill.SCHEDULED_UNIT}.service")
    assert busy < command.index(drill.REMOVE)


def test_the_drill_needs_the_dump_then_the_database_with_growth_and_margin() -> None:
    assert drill.needs(MANIFEST) == (2 * GIB, 11 * GIB + drill.MARGIN)


def test_room_is_checked_per_filesystem() -> None:
    assert drill.space_problems(facts(2 * GIB, 12 * GIB), MANIFEST) == []
    assert drill.space_problems(facts(2 * GIB, 11 * GIB), MANIFEST) == [
        "/var/lib/docker has 11.0 GiB free, the drill needs 12.0 GiB there"]
    assert drill.space_problems(facts(1 * GIB, 12 * GIB), MANIFEST) == [
        "/var/tmp/w has 1.0 GiB free, the drill needs 2.0 GiB there"]


def test_the_dump_and_the_data_add_up_on_one_filesystem() -> None:
    assert drill.space_problems(facts(14 * GIB, 14 * GIB, shared=True), MANIFEST) == []
    assert drill.space_problems(facts(13 * GIB, 13 * GIB, shared=True), MANIFEST) == [
        "/var/tmp/w and /var/lib/docker (one filesystem) have 13.0 GiB free, the drill needs "
        "14.0 GiB there"]


def test_memory_limit_is_configured_or_half_what_is_available() -> None:
    assert drill.memory_limit(6 * GIB, None) == 3 * GIB
    assert drill.memory_limit(6 * GIB, 1024) == GIB


def test_a_drill_image_with_another_placeholder_is_refused() -> None:
    with pytest.raises(ValueError, match="only placeholder"):
        config.BackupConfig(drill_image="registry.example/postgis:{version}")


def test_the_container_is_limited_local_and_labelled_and_its_command_has_no_secret() -> None:
    argv = shlex.split(drill.run_command("postgis/postgis:17-3.5", GIB, "/w/drill.env"))
    assert argv[:5] == ["docker", "run", "-d", "--name", drill.NAME]
    options = dict(zip(argv[5::2], argv[6::2], strict=False))
    assert options["--label"] == f"{drill.LABEL}={drill.OPERATOR}"
    assert options["--memory"] == options["--memory-swap"] == str(GIB)
    assert options["--publish"] == "127.0.0.1::5432"
    assert options["--env-file"] == "/w/drill.env"
    assert options["--mount"] == f"type=volume,dst={drill.VOLUME}"
    assert argv[argv.index("postgis/postgis:17-3.5") + 1] == "postgres"
    assert not any("PASSWORD" in word for word in argv)


def test_the_published_port_is_read() -> None:
    assert drill.port("127.0.0.1:32768\n") == 32768


def test_a_loopback_server_is_reached_without_tls_and_with_its_own_pgpass() -> None:
    db = DatabaseTarget("127.0.0.1", 32768, drill.DATABASE, drill.USER)
    host = DbHost(remote=None, db=db, work="/w/loopback-32768", loopback=True)  # type: ignore[arg-type]
    assert host.libpq.startswith("export PGPASSFILE=/w/loopback-32768/pgpass PGSSLMODE=disable "
                                 "PGHOST=127.0.0.1 PGPORT=32768 ")


def test_without_docker_the_drill_is_refused() -> None:
    class Answers:
        address = "host"
        work = "/w"

        def run(self, script: str, **_: object) -> tuple[int, str]:
            return 0, "docker=\n"

    with pytest.raises(OpsError, match="no Docker") as caught:
        drill.prepare(Answers(), MANIFEST, None)  # type: ignore[arg-type]
    assert "inv deploy" in caught.value.hint


class Host:
    """A remote that has the images in `present` and records what it is asked to run."""

    address = "host"

    def __init__(self, present: set[str]) -> None:
        self.present, self.ran = present, []

    def ok(self, command: str) -> bool:
        return shlex.split(command)[-1] in self.present

    def run(self, command: str, **_: object) -> str:
        self.ran.append(command)
        return ""


@pytest.mark.parametrize(("present", "pulled"), [(set(), True), ({"postgis/postgis:16-3.5"},
                                                                  False)])
def test_aws_pulls_the_drill_image_of_the_servers_major_only_when_missing(
        present: set[str], pulled: bool) -> None:
    from ops.aws.provider import AwsProvider

    env = config.load(path=config.ROOT / "config/example.yml")
    host = Host(present)
    assert AwsProvider().drill_image(env, host, 16) == "postgis/postgis:16-3.5"  # type: ignore[arg-type]
    assert host.ran == (["docker pull -q postgis/postgis:16-3.5"] if pulled else [])
