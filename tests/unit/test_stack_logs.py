"""`inv logs`' pure parts: the commands, reading their output, merging both sources in time."""

from __future__ import annotations

import datetime

from ops.stack import logs

HOST = "3f2a9c1d0b7e"
OUTPUT = "\n".join([
    "release\t3.19.2-abc",
    "service\tconsul", "service\treferencedata", "service\tlog",
    "since\t2026-03-05T10:00:09.123456789Z",
    f"hosts\t{HOST} ",
    "syslog\t/var/lib/docker/volumes/openlmis_syslog/_data/messages\t4096",
    f"S\t2026-03-05T10:00:02+00:00 {HOST} [           main] INFO "
    "org.openlmis.referencedata.Application Started Application on port 8080",
    f"S\t2026-03-05T10:00:01+00:00 {HOST} [           main] DEBUG "
    "org.openlmis.referencedata.Application Migrating schema referencedata to version 1",
    "D\t2026-03-05T10:00:00.500000000Z   OpenLMIS referencedata (stand-in) starting",
    "D\t2026-03-05T10:00:03.000000001Z registered with consul",
    "D\tno timestamp: a compose message",
])


def test_both_sources_are_read_and_merged_in_time_order() -> None:
    found = logs.parse(OUTPUT, 100)
    assert found.release == "3.19.2-abc"
    assert found.services == ("consul", "referencedata", "log")
    assert (found.hosts, found.offset) == (HOST, 4096)
    assert found.syslog.endswith("openlmis_syslog/_data/messages")
    assert [(line.source, line.text.split()[-1]) for line in found.lines] == [
        ("docker", "starting"), ("syslog", "1"), ("syslog", "8080"), ("docker", "consul"),
        ("docker", "message")]
    assert found.lines[0].render() == (
        "2026-03-05T10:00:00Z docker   OpenLMIS referencedata (stand-in) starting")
    assert found.lines[2].render().startswith(
        "2026-03-05T10:00:02Z syslog [           main] INFO org.openlmis.referencedata.")
    assert [line.source for line in logs.parse(OUTPUT, 2).lines] == ["docker", "docker"]
    assert logs.parse(OUTPUT, 0).lines == ()


def test_an_unknown_service_or_no_release_reads_as_such() -> None:
    found = logs.parse("release\t1-abc\nservice\tnginx\nservice\treferencedata\n", 100)
    assert "nosuchservice" not in found.services and found.lines == ()
    assert logs.parse("", 100).release == ""


def test_times_are_utc_whatever_their_form() -> None:
    docker = logs.line("D\t2026-03-05T10:00:00.123456789Z text")
    rsyslog = logs.line(f"S\t2026-03-05T11:00:00+01:00 {HOST} text")
    assert docker and rsyslog and docker.text == rsyslog.text == "text"
    assert rsyslog.when == datetime.datetime(2026, 3, 5, 10, tzinfo=datetime.UTC)
    assert docker.when and docker.when.microsecond == 123456
    assert logs.line("noise") is None
    assert logs.line("D\t\x1b[2K2026-03-05T10:00:00Z text") == docker.__class__(
        datetime.datetime(2026, 3, 5, 10, tzinfo=datetime.UTC), "docker", "text")
    assert logs.line("S\t2026-03-05T10:00:00+00:00 host text\r") == logs.Line(
        datetime.datetime(2026, 3, 5, 10, tzinfo=datetime.UTC), "syslog", "text")


def test_commands_read_the_release_and_follow_from_where_the_snapshot_ended() -> None:
    command = logs.snapshot_command("openlmis", "/opt/openlmis/current", "referencedata", 50)
    assert "cd /opt/openlmis/current " in command
    assert "label=com.docker.compose.service=referencedata" in command
    assert "openlmis_syslog" in command and "tail -n 50" in command and "--tail 50" in command
    follow = logs.follow_command("openlmis", logs.parse(OUTPUT, 10), "referencedata")
    assert "cd /opt/openlmis/releases/3.19.2-abc" in follow
    assert "since=2026-03-05T10:00:09.123456789Z\n" in follow and '--since "$since"' in follow
    assert f"hosts={HOST}" in follow and "tail -F -c +4097 " in follow
    plain = logs.follow_command("lab", logs.Snapshot("1-abc", ("nginx",)), "nginx")
    assert "tail -F" not in plain and plain.endswith("wait")
