"""Dump files move between the host and the backups bucket without passing through this
process: the host PUTs and GETs them itself with curl, on presigned URLs made here.

A URL carries a signature, so it reaches the host only on the standard input of the script
that uses it: never in a command line, a file or any output. Every uploaded part's ETag must
equal the MD5 the host computed of it, proof that the bucket holds those very bytes (the
backups bucket uses SSE-S3, whose ETags are MD5 digests). Files above PART go up in parts:
one PUT stops at 5 GiB.
"""

from __future__ import annotations

import shlex
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ops.config import Environment
from ops.db import dumps
from ops.db.manifest import FileEntry, Manifest
from ops.db.remote import DbHost
from ops.errors import OpsError
from ops.host.remote import UNLIMITED

PART = 1 << 30
EXPIRES = 12 * 3600  # a batch's URLs are made just before its command starts
POLL = 0.2  # seconds between looks at the files pg_dump has closed

# A URL read from stdin is handed to curl as a config file on a pipe (printf is a builtin).
_CURL = ("curl -sS --fail --connect-timeout 10 --speed-limit 1024 --speed-time 60 "
         "-H 'Expect:' -K <(printf 'url = \"%s\"\\n' \"$url\")")

# put OFFSET LENGTH URL: one part of "$f"; prints its MD5 (computed while it uploads) and
# the ETag the bucket answered.
_PUT = f"""part() {{ dd if="$f" iflag=skip_bytes,count_bytes skip="$1" count="$2" bs=1M \\
  status=none; }}
put() {{
  local url=$3 md5 pid etag try
  md5=$(mktemp)
  part "$1" "$2" | md5sum | cut -c1-32 > "$md5" &
  pid=$!
  for try in 1 2 3; do
    if etag=$(part "$1" "$2" | {_CURL} -T - \\
        -H "Content-Length: $2" -H 'Transfer-Encoding:' -D - -o /dev/null \\
        | tr -d '\\r"' | sed -n 's/^etag: *//Ip'); then
      wait "$pid"
      echo "$(< "$md5") $etag"
      rm -f "$md5"
      return
    fi
    sleep "$try"
  done
  rm -f "$md5"
  echo "the bytes $1+$2 of $f were not accepted after 3 tries" >&2
  return 1
}}"""


def parts(size: int, part: int) -> list[tuple[int, int]]:
    """(offset, length) of each part of a file of `size` bytes; an empty file is one part."""
    return [(offset, min(part, size - offset)) for offset in range(0, size, part)] or [(0, 0)]


def batches(sizes: dict[str, int], jobs: int) -> list[list[str]]:
    """The names split into at most `jobs` batches of about equal total size (one command
    each: a real OpenLMIS dump has hundreds of small files), largest first."""
    groups: list[list[str]] = [[] for _ in range(max(1, jobs))]
    totals = [0] * len(groups)
    for name in sorted(sizes, key=lambda n: (-sizes[n], n)):
        lightest = totals.index(min(totals))
        groups[lightest].append(name)
        totals[lightest] += sizes[name]
    return [group for group in groups if group]


def upload_script(files: list[tuple[str, list[tuple[int, int]]]]) -> str:
    """Bash reading one URL per part from stdin: for each (path, parts), PUTs each part and
    prints its MD5 and ETag, then the file's sha256 (computed meanwhile)."""
    lines, url = ["set -e", _PUT, "mapfile -t urls"], 0
    for path, spans in files:
        lines += [f"f={shlex.quote(path)}", "sha=$(mktemp)",
                  'sha256sum < "$f" | cut -c1-64 > "$sha" &', "hashing=$!"]
        for offset, length in spans:
            lines.append(f'put {offset} {length} "${{urls[{url}]}}"')
            url += 1
        lines += ['wait "$hashing"', 'cat "$sha"', 'rm -f "$sha"']
    return "\n".join(lines)


def download_script(paths: list[str]) -> str:
    """Bash reading one URL per path from stdin: GETs each into its path, prints its size
    and sha256."""
    lines = ["set -e"]
    for path in paths:
        lines += ["read -r url", f"f={shlex.quote(path)}", f'{_CURL} --retry 3 -o "$f"',
                  'stat -c %s "$f"', 'sha256sum < "$f" | cut -c1-64']
    return "\n".join(lines)


def upload(env: Environment, host: DbHost, files: dict[str, tuple[str, int]]
           ) -> dict[str, FileEntry]:
    """PUT the host's files (path: (key, size)) in one command; their sha256 and size, by
    path. OpsError when the bucket's ETags disagree with a file."""
    bucket = dumps.s3(env)
    spans = {path: parts(size, PART) for path, (_, size) in files.items()}
    multipart: dict[str, str] = {}
    try:
        urls = []
        for path, (key, _) in files.items():
            where = {"Bucket": env.bucket, "Key": key}
            if len(spans[path]) == 1:
                urls.append(bucket.generate_presigned_url("put_object", Params=where,
                                                          ExpiresIn=EXPIRES))
                continue
            multipart[path] = bucket.create_multipart_upload(**where)["UploadId"]
            urls += [bucket.generate_presigned_url(
                "upload_part", Params={**where, "UploadId": multipart[path], "PartNumber": n},
                ExpiresIn=EXPIRES) for n in range(1, len(spans[path]) + 1)]
        _, out = host.run(upload_script(list(spans.items())), stdin="\n".join(urls) + "\n",
                          what="uploading dump files", timeout=UNLIMITED)
        lines, entries = iter(out.splitlines()), {}
        for path, (key, size) in files.items():
            etags = [_checked(next(lines), path, n) for n in range(1, len(spans[path]) + 1)]
            digest = next(lines)
            if path in multipart:
                bucket.complete_multipart_upload(
                    Bucket=env.bucket, Key=key, UploadId=multipart[path], MultipartUpload={
                        "Parts": [{"ETag": f'"{e}"', "PartNumber": n}
                                  for n, e in enumerate(etags, 1)]})
                del multipart[path]
            entries[path] = FileEntry(digest, size)
        return entries
    finally:
        for path, upload_id in multipart.items():
            bucket.abort_multipart_upload(Bucket=env.bucket, Key=files[path][0],
                                          UploadId=upload_id)


def _checked(line: str, path: str, part: int) -> str:
    """The ETag of a part, which must equal the MD5 the host computed ("md5 etag")."""
    md5, _, etag = line.partition(" ")
    if md5 != etag:
        raise OpsError(f"the bucket stored part {part} of {path} as {etag or 'nothing'}, "
                       f"its MD5 is {md5}", hint="the backups bucket must use SSE-S3 "
                       "encryption (as provision sets it); run the backup again")
    return etag


def download(env: Environment, host: DbHost, files: dict[str, str]) -> dict[str, FileEntry]:
    """GET each key into the host's file (path: key) in one command; the sha256 and size
    the host read back, by path."""
    urls = [dumps.s3(env).generate_presigned_url(
        "get_object", Params={"Bucket": env.bucket, "Key": key}, ExpiresIn=EXPIRES)
        for key in files.values()]
    _, out = host.run(download_script(list(files)), stdin="\n".join(urls) + "\n",
                      what="downloading dump files", timeout=UNLIMITED)
    lines = out.split()
    return {path: FileEntry(lines[2 * i + 1], int(lines[2 * i]))
            for i, path in enumerate(files)}


def upload_while_written(env: Environment, host: DbHost, directory: str, backup_id: str,
                         jobs: int, writing: Future[Any]) -> dict[str, FileEntry]:
    """Upload each file of `directory` into dump `backup_id` as soon as pg_dump has closed
    it, in up to `jobs` commands at a time, until `writing` (the dump) is done; toc.dat and
    any file left then go last. What was uploaded, by file name, once all is done."""
    sent: dict[str, Future[dict[str, FileEntry]]] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
            host.remote.stopped_on_interrupt():
        while True:
            finished = writing.done()
            ready = {name: size for name, size in host.closed_files(directory).items()
                     if name not in sent and (finished or name != "toc.dat")}
            for batch in batches(ready, jobs):
                files = {f"{directory}/{n}": (dumps.data_key(backup_id, n), ready[n])
                         for n in batch}
                future = pool.submit(upload, env, host, files)
                sent.update((name, future) for name in batch)
            if finished:
                break
            time.sleep(POLL)
    return {name: future.result()[f"{directory}/{name}"] for name, future in sorted(sent.items())}


def download_dump(env: Environment, host: DbHost, manifest: Manifest, directory: str,
                  jobs: int) -> list[str]:
    """Every file of a dump into `directory` on the host, in up to `jobs` commands at once,
    each file checked against the manifest; the problems found (nothing is downloaded when
    files are missing or of the wrong size)."""
    stored = dumps.stored_sizes(env, manifest.id)
    problems = [f"{name}: missing from the bucket" if name not in stored else
                f"{name}: {stored[name]} bytes, the manifest says {entry.size}"
                for name, entry in sorted(manifest.files.items())
                if stored.get(name) != entry.size]
    if problems:
        return problems
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
            host.remote.stopped_on_interrupt():
        done = pool.map(lambda batch: download(env, host, {
            f"{directory}/{n}": dumps.data_key(manifest.id, n) for n in batch}),
            batches({n: e.size for n, e in manifest.files.items()}, jobs))
        got = {path.rsplit("/", 1)[1]: entry for result in done for path, entry in result.items()}
    return [f"{name}: sha256 differs from the manifest"
            for name, entry in sorted(manifest.files.items()) if got[name] != entry]
