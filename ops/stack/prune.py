"""Images no kept release needs: found when a deploy prunes releases, removed once it succeeded.

A release's images are read from its own files on the host (compose files, `.env` pins, the
Dockerfiles it builds), as deploy reads the new release's. Only images a pruned release used
are candidates, so nothing else on the host (verify-backup's scratch image, say) is touched;
an image a kept release (a rollback target) uses is never one. `docker image rm` without force
also refuses an image some container still uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ops import console
from ops.host.remote import Remote, sh
from ops.plan import Action, Change
from ops.stack import compose
from ops.stack.release import RELEASES, Release

_MARK = "@@ops-file "


@dataclass(frozen=True)
class RemoveImage:
    """Remove an image (untag it) after a successful deploy."""

    image: str


def canonical(image: str) -> str:
    """An image reference as `docker image ls` names it: with its tag (`latest` if none)."""
    last = image.rpartition("/")[2]
    return image if ":" in last or "@" in image else f"{image}:latest"


def plan(needs: dict[str, list[str]], pruned: list[str],
         present: set[str]) -> list[Change[RemoveImage]]:
    """Removals of the images that pruned releases used, no other release in `needs` (every
    kept release, the new one included) uses, and the host has. Pure."""
    kept = {canonical(i) for release, images in needs.items() if release not in pruned
            for i in images}
    gone = {canonical(i) for release in pruned for i in needs.get(release, [])}
    return [Change(Action.DELETE, f"image {image}", "no kept release uses it",
                   payload=RemoveImage(image))
            for image in sorted(gone - kept) if image in present]


def files_command(release_ids: list[str]) -> str:
    """One read-only command printing what says which images releases use, and the host's
    images."""
    dirs = " ".join(sh(r) for r in release_ids)
    return (f"cd {sh(RELEASES)} && for r in {dirs}; do find \"$r\" -maxdepth 3 -type f "
            "\\( -name 'docker-compose*.yml' -o -name .env -o -name Dockerfile \\) | sort "
            f"| while read -r f; do printf '\\n{_MARK}%s\\n' \"$f\"; cat \"$f\"; done; done; "
            f"printf '\\n{_MARK}images\\n'; "
            "docker image ls --format '{{.Repository}}:{{.Tag}}' 2>/dev/null")


def parse(output: str) -> tuple[dict[str, list[str]], set[str]]:
    """Each release's images, and the images the host has, from the command's output."""
    files: dict[str, dict[str, str]] = {}
    present: set[str] = set()
    for chunk in output.split(f"\n{_MARK}")[1:]:
        path, _, text = chunk.partition("\n")
        if path == "images":
            present = {i for i in text.split() if "<none>" not in i}
            continue
        release_id, _, name = path.partition("/")
        files.setdefault(release_id, {})[name] = text
    needs = {}
    for release_id, texts in files.items():
        services = compose.services(texts, compose.parse_env(texts.get(".env", "")))
        needs[release_id] = Release(release_id, {}, services).images
    return needs, present


def unused(remote: Remote, wanted: Release, releases: tuple[str, ...],
           pruned: list[str]) -> list[Change[RemoveImage]]:
    """The removals planned when, of the host's `releases`, `pruned` go and `wanted` comes."""
    if not pruned:
        return []
    kept = [r for r in releases if r not in pruned and r != wanted.id]
    needs, present = parse(remote.run(files_command([*kept, *pruned]),
                                      what="reading the releases' images"))
    return plan({**needs, wanted.id: wanted.images}, pruned, present)


def remove(remote: Remote, payloads: Iterable[object]) -> None:
    """Remove the images of the plan's `RemoveImage` payloads; one still in use stays, with a
    warning."""
    for image in [p.image for p in payloads if isinstance(p, RemoveImage)]:
        outcome = remote.execute(f"docker image rm {sh(image)}", check=False,
                                 what=f"removing image {image}")
        if outcome.ok:
            console.ok(f"removed image {image}: no kept release uses it")
        else:
            console.warn(f"kept image {image}: {(outcome.err or outcome.out).strip()[-200:]}")
