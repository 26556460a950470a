"""What a stack's compose files say: services, images, healthchecks, memory limits. Pure.

A stack lives in compose/<name>/: a settings.env.template, and a directory per release,
releases/<release>/, holding what upstream ships for it: docker-compose.yml (and an optional
override), `.env` pinning the image versions, and the `config/` build context if it has one.
Interpolation supports ${VAR}, ${VAR:-default} and ${VAR-default}.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ops.config import ROOT
from ops.errors import OpsError

COMPOSE_FILES = ("docker-compose.yml", "docker-compose.override.yml")
TOOLKIT_FILE = "docker-compose.ops.yml"  # deploy's own, merged last (ops.stack.override)
_VAR = re.compile(r"\$\{(\w+)(?:(:?-)([^}]*))?\}")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$", re.IGNORECASE)


@dataclass(frozen=True)
class Service:
    name: str
    image: str | None
    healthcheck: bool
    mem_limit: int  # bytes, 0 = none
    ports: tuple[str, ...]
    settings: bool = False  # reads settings.env (the OpenLMIS services, nginx…)
    restart: str = ""  # the stack's own restart policy, if it sets one
    build_from: tuple[str, ...] = ()  # a built service's base images (its Dockerfile's FROM)
    context: str = ""  # a built service's build context (a directory of the release)
    volumes: tuple[str, ...] = ()  # the named volumes it mounts
    nofile: tuple[int, int] = (0, 0)  # the open-files limit it asks (soft, hard); 0: Docker's
    java_opts: str | None = None  # its JAVA_OPTS, when its environment sets one

    @property
    def built(self) -> bool:
        """Built from the release's own files (a one-shot such as service-configuration)."""
        return bool(self.context)


def stack_dir(name: str) -> Path:
    return ROOT / "compose" / name


def release_dir(name: str, release: str, releases: Path | None = None) -> Path:
    """<releases>/<release>/ (by default compose/<stack>/releases/), which must hold a `.env`
    and a compose file."""
    path = (releases or stack_dir(name) / "releases") / release
    if not ((path / ".env").is_file() and (path / COMPOSE_FILES[0]).is_file()):
        known = sorted(p.parent.name for p in path.parent.glob(f"*/{COMPOSE_FILES[0]}"))
        raise OpsError(f"stack {name} has no release {release!r}",
                       hint=f"known releases: {', '.join(known) or 'none'}")
    return path


def release_env(directory: Path) -> str:
    """A release directory's `.env`: its pinned image versions."""
    return (directory / ".env").read_text()


def parse_env(text: str) -> dict[str, str]:
    """KEY=value lines; comments and blank lines ignored."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, op, default = match.groups()
        value = values.get(name)
        if (op == ":-" and not value) or (op == "-" and value is None):
            return default
        return value or ""

    return _VAR.sub(one, text)


class _Loader(yaml.SafeLoader):
    """YAML as Compose reads it: a value tagged `!override` replaces what earlier files said
    instead of merging with it, one tagged `!reset` clears it (Compose 2.24.4+)."""


def _override(loader: yaml.SafeLoader, node: yaml.Node) -> object:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("!override", _override)
_Loader.add_constructor("!reset", lambda loader, node: None)


def load(text: str) -> Any:
    """A compose file's YAML, with Compose's merge tags (see _Loader)."""
    return yaml.load(text, Loader=_Loader)


def services(files: dict[str, str], dotenv: dict[str, str]) -> list[Service]:
    """The services the compose files define (merged in order, `environment` per key as
    compose merges it), interpolated with .env; a built service's base images read from its
    context's Dockerfile in `files`."""
    merged: dict[str, dict] = {}
    for name in (*COMPOSE_FILES, TOOLKIT_FILE):
        if name in files:
            data = load(interpolate(files[name], dotenv)) or {}
            for service, spec in (data.get("services") or {}).items():
                into = merged.setdefault(service, {})
                environment = {**_environment(into), **_environment(spec or {})}
                into.update(spec or {}, environment=environment)
    return [
        Service(name, spec.get("image"), bool(spec.get("healthcheck")),
                memory_bytes(str(spec.get("mem_limit") or "0")),
                tuple(str(p) for p in spec.get("ports") or ()),
                "settings.env" in _listed(spec.get("env_file")), str(spec.get("restart") or ""),
                _bases(files, _context(spec.get("build"))), _context(spec.get("build")),
                _named_volumes(spec.get("volumes")), _nofile(spec.get("ulimits")),
                spec["environment"].get("JAVA_OPTS"))
        for name, spec in merged.items() if not spec.get("profiles")
    ]


def _environment(spec: dict) -> dict[str, str]:
    """A service's `environment`, given as a mapping or as KEY=value lines, as a mapping."""
    value = spec.get("environment") or {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    return dict(str(line).partition("=")[::2] for line in value)


def _context(build: object) -> str:
    """The directory of a `build:` (a context path, or a mapping with one); "" without."""
    if not build:
        return ""
    context = build if isinstance(build, str) else (
        build.get("context", ".") if isinstance(build, dict) else ".")
    return str(context).removeprefix("./").rstrip("/") or "."


def _bases(files: dict[str, str], context: str) -> tuple[str, ...]:
    """The FROM images of the Dockerfile in a build context."""
    dockerfile = files.get(f"{context}/Dockerfile", "") if context else ""
    return tuple(re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE | re.IGNORECASE))


def _nofile(ulimits: object) -> tuple[int, int]:
    """`ulimits: {nofile: N}` or `{nofile: {soft: S, hard: H}}` as (soft, hard)."""
    value = ulimits.get("nofile") if isinstance(ulimits, dict) else None
    if isinstance(value, dict):
        return int(value.get("soft", 0)), int(value.get("hard", 0))
    return (int(value), int(value)) if value else (0, 0)


def _named_volumes(volumes: list[object] | None) -> tuple[str, ...]:
    """The named volumes among a service's mounts (short `name:/path[:ro]` or long syntax);
    not bind mounts (a path) nor anonymous volumes (no source)."""
    names = []
    for mount in volumes or ():
        if isinstance(mount, dict):
            source = mount.get("source", "") if mount.get("type") == "volume" else ""
        else:
            source, _, target = str(mount).partition(":")
            source = source if target else ""
        if source and not source.startswith((".", "/", "~")):
            names.append(source)
    return tuple(dict.fromkeys(names))


def _listed(value: str | list[object] | None) -> list[str]:
    """A compose field given as one string or as a list, as a list."""
    return [value] if isinstance(value, str) else [str(v) for v in value or ()]


def memory_bytes(value: str) -> int:
    """`1.3G`, `512m`, `700M` → bytes (Docker's units are powers of 1024)."""
    match = _SIZE.match(value.strip())
    if not match:
        raise OpsError(f"mem_limit {value!r} is not a size like 512m or 1.3g")
    number, unit = match.groups()
    return int(float(number) * 1024 ** "bkmg".index(unit.lower() or "b"))
