"""Release identity, the stack plan, drift, pruning, rollback choice, lock parsing: pure."""

from __future__ import annotations

import pytest

from ops.errors import OpsError
from ops.host.facts import Facts
from ops.stack import lock, release
from ops.stack.compose import Service
from ops.stack.deploy import pick
from ops.stack.release import Release

SERVICES = [Service("nginx", "lab/app:1", True, 0, ("80:80",)),
            Service("auth", "lab/app:1", True, 0, ())]


def rel(settings: bytes = b"A='1'\n") -> Release:
    return Release("1", {"docker-compose.yml": b"services: {}", ".env": b"",
                         "settings.env": settings}, SERVICES)


def test_release_id_is_the_name_plus_a_digest_of_every_file() -> None:
    assert rel().id == rel().id
    assert rel().id.startswith("1-")
    assert rel(b"A='2'\n").id != rel().id


def test_nothing_to_do_when_current_and_nothing_drifts() -> None:
    r = rel()
    facts = Facts(current=r.id, releases=(r.id,), images={"lab/app:1": "sha256:x"})
    assert release.plan(r, facts, drifted={}, keep=3, push={"lab/app:1": "sha256:x"}) == []
    assert release.plan(r, facts, drifted={}, keep=3, push=None) == []


def test_first_release_on_a_bare_host() -> None:
    lines = [c.line() for c in release.plan(rel(), Facts(), drifted={}, keep=3,
                                            push={"lab/app:1": "sha256:x"})]
    assert lines == [f"+ release {rel().id}: compose files, .env, settings.env (0600)",
                     "+ image lab/app:1: push from this machine over SSH",
                     f"~ current: none → {rel().id}",
                     "> docker compose up: every service of the release"]


def test_pull_when_not_pushing_and_only_missing_images() -> None:
    r = rel()
    changes = release.plan(r, Facts(current=r.id, releases=(r.id,)), drifted={}, keep=3,
                           push=None)
    assert [c.line() for c in changes] == ["> docker compose pull: lab/app:1",
                                           "> docker compose up: every service of the release"]


def test_drift_from_compose_dry_run() -> None:
    out = (" DRY-RUN MODE -  Container openlmis-nginx-1  Running\n"
           " DRY-RUN MODE -  Container openlmis-auth-1  Recreate\n"
           " DRY-RUN MODE -  Container openlmis-auth-1  Recreated\n"
           " DRY-RUN MODE -  Container 57e0_openlmis-auth-1  Started\n"
           " DRY-RUN MODE -  Container openlmis-dhis2-integration-1  Created\n")
    assert release.drift(out, "openlmis") == {"auth": "Recreate", "dhis2-integration": "Created"}
    r = rel()
    changes = release.plan(r, Facts(current=r.id, releases=(r.id,), images={"lab/app:1": "i"}),
                           drifted={"auth": "Recreate"}, keep=3, push=None)
    assert [c.line() for c in changes] == ["> docker compose up: auth (Recreate)"]
    built = Release("1", r.files, [*SERVICES, Service("config", "p-config:d", False, 0, (),
                                                        context="config")])
    assert release.plan(built, Facts(current=built.id, releases=(built.id,),
                                     images={"lab/app:1": "i"}),
                        drifted={"config": "Created"}, keep=3, push=None) == []  # a one-shot


def test_prune_keeps_the_newest_and_never_the_previous_one() -> None:
    assert release.prunable(("c", "b", "a"), "d", "c", 3) == ["a"]
    assert release.prunable(("c", "b", "a"), "d", "a", 2) == ["b"]
    assert release.prunable(("b", "a"), "a", "b", 2) == []


def test_pick_the_rollback_target() -> None:
    releases = ("2-bbb", "1-aaa", "1-old")
    assert pick(releases, "2-bbb", None) == "1-aaa"
    assert pick(releases, "2-bbb", "1") == "1-aaa"
    assert pick(releases, "2-bbb", "1-old") == "1-old"
    with pytest.raises(OpsError, match="no release '9'"):
        pick(releases, "2-bbb", "9")
    with pytest.raises(OpsError, match="no earlier release"):
        pick(("2-bbb",), "2-bbb", None)


def test_lock_parsing_acquired_held_and_stale() -> None:
    holder = lock.Holder("me@pc", "deploy", "2-b", "2026-01-01T00:00:00Z", 249, "boot")
    record = '{"action": "deploy", "boot_id": "boot", "release": "2-b", ' \
             '"session_pid": 249, "since": "2026-01-01T00:00:00Z", "who": "me@pc"}'
    assert lock.parse_acquire("acquired\n") == (True, None, False)
    assert lock.parse_acquire(f"held\n{record}\n\nalive\n") == (False, holder, False)
    assert lock.parse_acquire(f"held\n{record}\n\nstale\n") == (False, holder, True)
    assert holder.describe() == "me@pc since 2026-01-01T00:00:00Z (deploy 2-b)"
    assert '"session_pid": 249' in lock.acquire_command(holder)


def test_production_refuses_unreleased_builds() -> None:
    pins = {"OL_AUTH_VERSION": "4.5.0-SNAPSHOT", "OL_NGINX_VERSION": "v7.1"}
    release.check_released(pins, production=False)
    with pytest.raises(OpsError, match=r"OL_AUTH_VERSION=4\.5\.0-SNAPSHOT"):
        release.check_released(pins, production=True)


def test_an_upgrade_backs_the_database_up_before_the_switch() -> None:
    live = [Service("referencedata", "openlmis/referencedata:15.4.0", False, 0, ()),
            Service("consul", "gliderlabs/consul-server", False, 0, ()),
            Service("nginx", "openlmis/nginx:v7.1", False, 0, ()),
            Service("config", "p-config:a", False, 0, (), context="config")]
    wanted = [Service("referencedata", "openlmis/referencedata:15.5.0", False, 0, ()),
              Service("consul", "hashicorp/consul:1.15", False, 0, ()),
              Service("nginx", "openlmis/nginx:v7.1", False, 0, ()),
              Service("config", "p-config:b", False, 0, (), context="config"),
              Service("new", "openlmis/new:1", False, 0, ())]
    upgraded = release.upgrades(live, wanted)
    assert upgraded == ("referencedata 15.4.0 → 15.5.0",
                        "consul gliderlabs/consul-server → hashicorp/consul:1.15")
    r = Release("2", {"a": b"1"}, wanted)
    facts = Facts(current="1-x", releases=("1-x",), docker_active=True)
    lines = [c.line() for c in release.plan(r, facts, drifted={}, keep=3, push=None,
                                            upgraded=upgraded, backup="dump")]
    assert lines.index("> back up the database: dump, before referencedata 15.4.0 → 15.5.0, "
                       "consul gliderlabs/consul-server → hashicorp/consul:1.15") == \
        lines.index(f"~ current: 1-x → {r.id}") - 1
    again = Facts(current=r.id, releases=(r.id,), docker_active=True,
                  images=dict.fromkeys(r.images, "i"))
    assert release.plan(r, again, drifted={}, keep=3, push=None, upgraded=upgraded) == []
