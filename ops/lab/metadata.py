"""The lab's instance metadata service: IMDSv2 for lab hosts, which have no 169.254.169.254.

A process of its own beside the emulator, on the lab network's gateway (every lab host reaches
it). It serves what a host's scheduled job relies on, as AWS documents IMDSv2 in the EC2 user
guide (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/: configuring-instance-metadata-
service.html, instancedata-data-retrieval.html, and iam-roles-for-amazon-ec2.html, "Retrieve
security credentials from instance metadata"):

- `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` (1 to 21600) answers a
  session token; a missing or out-of-range TTL is 400, and a PUT carrying `X-Forwarded-For`
  is refused (403), as AWS refuses tokens to requests that went through a proxy.
- Every GET needs a valid, unexpired token of the same instance (`X-aws-ec2-metadata-token`):
  without one, 401 (HttpTokens=required, as provision launches the instance).
- `GET /latest/meta-data/iam/security-credentials/` names the instance's role (404 without
  one); `…/<role>` answers its temporary credentials as JSON (Code, LastUpdated, Type
  AWS-HMAC, AccessKeyId, SecretAccessKey, Token, Expiration), here from the emulator's STS
  AssumeRole of that role. Anything else is 404.

Which instance profile a lab host has is recorded in the lab's state: when an emulated
instance is launched with one (ops.lab.provider), or given by `attach_profile`.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3

from ops.lab import served
from ops.lab.state import LabState

CREDENTIALS = "/latest/meta-data/iam/security-credentials/"
MAX_TTL = 21600


@dataclass(frozen=True)
class MetadataService:
    lab: LabState

    def recorded(self) -> str | None:
        """The URL the service was last started on (not checked)."""
        return self.lab.read("metadata").get("url")

    def url(self) -> str | None:
        """The service's URL when it answers, else None."""
        url = self.recorded()
        return url if url and _answers(url) else None

    def start(self, address: str) -> str:
        """Start the service on `address` unless it answers there. Idempotent."""
        return served.start(self.lab, "metadata", address,
                            lambda port: [sys.executable, "-m", "ops.lab.metadata", address,
                                          str(port)], _answers, "instance metadata service",
                            env={"OPS_LAB_DIR": str(self.lab.dir),
                                 "OPS_LAB_NAME": self.lab.name})

    def stop(self) -> bool:
        return served.stop(self.lab, "metadata")

    def attach_profile(self, address: str, profile: str | None) -> None:
        """The lab host at `address` has the instance profile `profile` (None: none)."""
        state = self.lab.read("metadata")
        profiles = {k: v for k, v in state.get("profiles", {}).items() if k != address}
        if profile:
            profiles[address] = profile
        self.lab.write("metadata", {**state, "profiles": profiles})

    def profile(self, address: str) -> str | None:
        return self.lab.read("metadata").get("profiles", {}).get(address)


def _answers(url: str) -> bool:
    """Whether the service answers (a PUT without a TTL: 400, as IMDS says)."""
    request = urllib.request.Request(f"{url}/latest/api/token", method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=2):
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == 400
    except (urllib.error.URLError, OSError):
        return False


class _Service:
    """Tokens issued (token: address, expiry) and credentials served, by role."""

    def __init__(self, lab: LabState) -> None:
        self.lab = lab
        self.tokens: dict[str, tuple[str, float]] = {}
        self.cached: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def _aws(self, name: str) -> Any:
        session = boto3.Session(aws_access_key_id="lab", aws_secret_access_key="lab",
                                region_name="us-east-1")
        return session.client(name, endpoint_url=self.lab.read("emulator").get("url"))  # type: ignore[call-overload]

    def role(self, address: str) -> str | None:
        """The role of the host's instance profile, as IAM has it."""
        profile = MetadataService(self.lab).profile(address)
        if not profile:
            return None
        roles = self._aws("iam").get_instance_profile(
            InstanceProfileName=profile)["InstanceProfile"]["Roles"]
        return roles[0]["RoleName"] if roles else None

    def credentials(self, role: str) -> dict[str, Any]:
        with self.lock:
            found = self.cached.get(role)
            if found and found["expires"] - time.time() > 300:
                return found["body"]
            arn = self._aws("iam").get_role(RoleName=role)["Role"]["Arn"]
            given = self._aws("sts").assume_role(RoleArn=arn, RoleSessionName="lab-host",
                                                 DurationSeconds=3600)["Credentials"]
            expiry = given["Expiration"]
            body = {"Code": "Success",
                    "LastUpdated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "Type": "AWS-HMAC", "AccessKeyId": given["AccessKeyId"],
                    "SecretAccessKey": given["SecretAccessKey"],
                    "Token": given["SessionToken"],
                    "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}
            self.cached[role] = {"body": body, "expires": expiry.timestamp()}
            return body


def _handler(service: _Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            if self.path != "/latest/api/token":
                return self._answer(404, "Not Found")
            if self.headers.get("X-Forwarded-For"):
                return self._answer(403, "Forbidden")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TTL:
                return self._answer(400, "Bad Request")
            token = secrets.token_urlsafe(40)
            with service.lock:
                service.tokens[token] = (self.client_address[0], time.time() + int(ttl))
            return self._answer(200, token, {"X-aws-ec2-metadata-token-ttl-seconds": ttl})

        def do_GET(self) -> None:
            token = service.tokens.get(self.headers.get("X-aws-ec2-metadata-token", ""))
            address = self.client_address[0]
            if not token or token[0] != address or token[1] < time.time():
                return self._answer(401, "Unauthorized")
            if not self.path.startswith(CREDENTIALS):
                return self._answer(404, "Not Found")
            role = service.role(address)
            asked = self.path[len(CREDENTIALS):]
            if role is None or asked not in ("", role):
                return self._answer(404, "Not Found")
            if not asked:
                return self._answer(200, role)
            return self._answer(200, json.dumps(service.credentials(role), indent=2))

        def _answer(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"{self.client_address[0]} {format % args}\n")

    return Handler


def serve(address: str, port: int) -> None:
    server = ThreadingHTTPServer((address, port), _handler(_Service(LabState.current())))
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
