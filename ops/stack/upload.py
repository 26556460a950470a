"""A release's directory written on a host, atomically."""

from __future__ import annotations

from contextlib import suppress

from ops import console
from ops.errors import OpsError
from ops.host.remote import Remote, sh
from ops.stack import release
from ops.stack.release import Release


def upload(remote: Remote, wanted: Release) -> None:
    """Write the release's directory on a host: as `<id>.partial`, renamed when complete, its
    secret files 0600; an interrupted upload leaves nothing behind."""
    partial = f"{wanted.dir}.partial"
    dirs = sorted({f"{partial}/{p.rsplit('/', 1)[0]}" for p in wanted.files if "/" in p})
    remote.run(f"rm -rf {sh(partial)} && install -d -m 0700 {sh(partial)} "
               + "".join(f"&& install -d -m 0755 {sh(d)} " for d in dirs),
               what="creating the release directory")
    try:
        for path, data in wanted.files.items():
            secret = path in release.SECRET_FILES or path == ".env"
            remote.put(f"{partial}/{path}", data, 0o600 if secret else 0o644)
    except KeyboardInterrupt:  # a partial release holds secrets: not left behind
        with suppress(OpsError):
            remote.run(f"rm -rf {sh(partial)}", what="removing the partial release")
        raise
    remote.run(f"mv -T {sh(partial)} {sh(wanted.dir)}", what="completing the release")
    console.ok(f"uploaded release {wanted.id} to {remote.address}")
