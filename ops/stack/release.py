"""A release: the files that make it, its id, and the plan that brings the host to it. Pure.

/opt/openlmis/releases/<id>/ holds the compose files, `.env` (pinned versions) and
settings.env (0600); `current` points at the live one. The id is the release name plus a
digest of every file, so a change of settings is a new release, and re-deploying the same
desired state finds it already there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ops.errors import OpsError
from ops.host.facts import ROOT, Facts
from ops.host.remote import sh
from ops.plan import Action, Change
from ops.stack.compose import COMPOSE_FILES, TOOLKIT_FILE, Service

RELEASES = f"{ROOT}/releases"
CURRENT = f"{ROOT}/current"
SECRET_FILES = ("settings.env",)


@dataclass(frozen=True)
class Release:
    name: str
    files: dict[str, bytes]
    services: list[Service] = field(default_factory=list)

    @property
    def id(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + self.files[path] + b"\0")
        return f"{self.name}-{digest.hexdigest()[:10]}"

    @property
    def dir(self) -> str:
        return f"{RELEASES}/{self.id}"

    @property
    def images(self) -> list[str]:
        """What the host needs: each service's image, and the bases of those it builds."""
        return sorted({name for s in self.services
                       for name in (s.build_from if s.built else [s.image] if s.image else [])})


@dataclass(frozen=True)
class Upload:
    """Write the release's directory on the host."""

    release_id: str


@dataclass(frozen=True)
class Push:
    """Send a local image to the host over SSH."""

    image: str


class Compose(Enum):
    """Steps on the whole release: pull what the host lacks, switch `current`, bring it up."""

    PULL = "pull"
    SWITCH = "switch"
    UP = "up"


@dataclass(frozen=True)
class Backup:
    """Back the database up before the services' versions change (their start migrates it)."""

    upgrades: tuple[str, ...]


@dataclass(frozen=True)
class Prune:
    """Remove an old release's directory."""

    release_id: str


Payload = Upload | Push | Backup | Compose | Prune


def check_released(pins: dict[str, str], *, production: bool) -> None:
    """Refuse upstream's unreleased builds (`-SNAPSHOT` versions) in production."""
    snapshots = sorted(f"{k}={v}" for k, v in pins.items() if v.endswith("-SNAPSHOT"))
    if production and snapshots:
        raise OpsError(f"the release pins unreleased upstream builds: {', '.join(snapshots)}",
                       hint="production runs tagged releases only: choose another "
                       "stack.release, or wait for upstream's tag")


def source_files(directory: Path) -> dict[str, bytes]:
    """A release directory's compose files and `config/` build context (its `.env` aside)."""
    files = {name: (directory / name).read_bytes() for name in COMPOSE_FILES
             if (directory / name).is_file()}
    config = directory / "config"
    for path in sorted(config.rglob("*")) if config.is_dir() else []:
        if path.is_file():
            files[str(path.relative_to(directory))] = path.read_bytes()
    return files


def drift(dry_run: str, project: str) -> dict[str, str]:
    """What `docker compose up --dry-run` would do, by container, when not just `Running`.

    Compose's own decision (config hash, image, state), at the cost of one ~0.1 s command:
    `docker compose config --hash` differs from the containers' labels when env_file is used.
    """
    actions: dict[str, str] = {}
    for line in dry_run.splitlines():
        words = line.replace("DRY-RUN MODE -", "").split()
        if len(words) >= 3 and words[0] == "Container":
            name = words[1].split("_", 1)[-1].removeprefix(f"{project}-")
            actions.setdefault(name.rsplit("-", 1)[0], " ".join(words[2:]))
    return {name: what for name, what in actions.items() if what not in ("Running", "Healthy")}


def upgrades(live: list[Service], wanted: list[Service]) -> tuple[str, ...]:
    """The services whose image changes between the live release and the wanted one."""
    before = {s.name: s.image for s in live if s.image and not s.built}
    return tuple(f"{s.name} {_change(before[s.name], s.image)}" for s in wanted
                 if s.image and not s.built and before.get(s.name, s.image) != s.image)


def _change(old: str, new: str) -> str:
    """`15.4.0 → 15.5.0` within one repository, whole names across two."""
    (old_repo, _, old_tag), (new_repo, _, new_tag) = old.rpartition(":"), new.rpartition(":")
    return f"{old_tag} → {new_tag}" if old_repo and old_repo == new_repo else f"{old} → {new}"


def plan(release: Release, facts: Facts, *, drifted: dict[str, str], keep: int,
         push: dict[str, str] | None, upgraded: tuple[str, ...] = (),
         backup: str = "") -> list[Change[Payload]]:
    """Changes from the host's facts to the release running.

    `drifted`: what compose would do to the current release's services (see `drift`); a
    one-shot build (service-configuration) that did its job is re-run by every `up`, which is
    no drift. `push`: the local image ids to push (None: pull from a registry what the host
    lacks). `upgraded` (see `upgrades`): the database is backed up (`backup` names how) before
    the switch.
    """
    one_shots = {service.name for service in release.services if service.built}
    drifted = {name: what for name, what in drifted.items() if name not in one_shots}
    changes: list[Change[Payload]] = []
    if release.id not in facts.releases:
        changes.append(Change(Action.CREATE, f"release {release.id}",
                              "compose files, .env, settings.env (0600)",
                              payload=Upload(release.id)))
    if push is not None:
        send = [i for i in release.images if facts.images.get(i) != push.get(i)]
        changes += [Change(Action.CREATE, f"image {i}", "push from this machine over SSH",
                           payload=Push(i)) for i in send]
    else:
        lacking = [i for i in release.images if i not in facts.images]
        if lacking:
            changes.append(Change(Action.RUN, "docker compose pull", ", ".join(lacking),
                                  payload=Compose.PULL))
    switching = facts.current != release.id
    if switching and upgraded:
        changes.append(Change(Action.RUN, "back up the database", f"{backup}, before "
                              f"{', '.join(upgraded)}", payload=Backup(upgraded)))
    if switching:
        changes.append(Change(Action.UPDATE, "current", f"{facts.current or 'none'} → "
                                                        f"{release.id}", payload=Compose.SWITCH))
    if changes or drifted:
        what = "every service of the release" if switching or not drifted else \
            ", ".join(f"{s} ({why})" for s, why in sorted(drifted.items()))
        changes.append(Change(Action.RUN, "docker compose up", what, payload=Compose.UP))
    changes += [Change(Action.DELETE, f"release {old}", f"keep the last {keep}",
                       payload=Prune(old))
                for old in prunable(facts.releases, release.id, facts.current, keep)]
    return changes


def unnamed_builds_command(project: str) -> str:
    """Remove the built images and volumes the toolkit named per build context (see
    ops.stack.override) that no release left on the host names: a pruned release's."""
    named = f"{RELEASES}/*/{TOOLKIT_FILE}"
    digest = "-[0-9a-f]{10}$"
    return (
        f"for v in $(docker volume ls -q | grep -E {sh(f'^{project}_.+{digest}')}); do "
        f"grep -qsF \"name: $v\" {named} || docker volume rm $v >/dev/null || true; done; "
        "for i in $(docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -E "
        f"{sh(f'^{project}-[^:]+:[0-9a-f]{{10}}$')}); do "
        f"grep -qsF \"image: $i\" {named} || docker image rm $i >/dev/null || true; done")


def prunable(releases: tuple[str, ...], new: str, previous: str, keep: int) -> list[str]:
    """Releases beyond the newest `keep` (newest first), never the new or previous one."""
    ordered = [new, *[r for r in releases if r != new]]
    return [r for r in ordered[keep:] if r not in (new, previous)]
