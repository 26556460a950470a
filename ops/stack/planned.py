"""The services a deploy of the environment's release runs, read from this repository (no host,
no secret): what provision and size-db size the host by, as deploy does."""

from __future__ import annotations

from ops.config import Environment
from ops.stack import compose, override, release, settings
from ops.stack.compose import Service


def services(env: Environment) -> list[Service]:
    """The stack's services with the toolkit's compose file merged (stack.memory included)."""
    source = compose.release_dir(env.stack.name, env.stack.release, env.stack.releases_dir)
    files = release.source_files(source)
    dotenv = settings.dotenv(compose.release_env(source), env, override.compose_file(files))
    texts = {k: v.decode(errors="replace") for k, v in files.items()}
    return override.merged(texts, compose.parse_env(dotenv), env.stack.memory,
                           project=env.project, files=files)[1]
