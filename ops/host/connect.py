"""One verified SSH connection per host: known_hosts is checked, never silently extended.

As OpenSSH does with an IdentityFile and a running agent: the key file is tried first, then
the keys ssh-agent holds (so a passphrase-protected key works once `ssh-add` has unlocked it).
The agent is never forwarded to the host, whatever ~/.ssh/config says: a host that can use the
operator's agent can log in wherever the operator can. Keepalives are on (as
ServerAliveInterval), and a peer that stops acknowledging ends the connection after
DEAD_AFTER seconds (as ServerAliveCountMax) instead of leaving a command waiting forever.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from pathlib import Path

import paramiko
from fabric import Config, Connection

from ops.errors import OpsError

KEEPALIVE = 15  # seconds between keepalives, as OpenSSH's ServerAliveInterval
DEAD_AFTER = 3 * KEEPALIVE  # unacknowledged for this long, the connection is dead


def fingerprint(key: paramiko.PKey) -> str:
    """The key's SHA256 fingerprint, as `ssh-keygen -l` prints it."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


class UnknownHost(OpsError):
    """A host whose key is not in known_hosts; `fingerprint` is what it offered."""

    def __init__(self, message: str, *, hint: str, fingerprint: str) -> None:
        super().__init__(message, hint=hint)
        self.fingerprint = fingerprint


class ChangedHost(OpsError):
    """A host whose key is not the one known_hosts holds for its address (an attack, or a
    rebuilt host: a replaced EC2 instance keeps the Elastic IP); `fingerprint` is what it
    offers."""

    def __init__(self, message: str, *, hint: str, fingerprint: str) -> None:
        super().__init__(message, hint=hint)
        self.fingerprint = fingerprint


def console_fingerprints(console_output: str) -> list[str]:
    """The host key fingerprints cloud-init printed on an instance's console, as
    `ssh-keygen -l` shows them (`ssh-ed25519 SHA256:…`)."""
    found = []
    block = console_output.partition("-----BEGIN SSH HOST KEY FINGERPRINTS-----")[2]
    for line in block.partition("-----END SSH HOST KEY FINGERPRINTS-----")[0].splitlines():
        words = line.split()
        if len(words) >= 4 and words[1].startswith("SHA256:"):
            kind = words[-1].strip("()").lower()
            found.append(f"ssh-{kind} {words[1]}" if kind in ("ed25519", "rsa", "dss")
                         else f"{kind} {words[1]}")
    return found


class RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse a host whose key is not in known_hosts, saying how to check and accept it."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        host = hostname.strip("[]").split("]:")[0]
        raise UnknownHost(
            f"{hostname} is not a known host: it offers {fingerprint(key)}",
            fingerprint=fingerprint(key),
            hint="compare that fingerprint with the one the host printed (for EC2: "
            "`aws ec2 get-console-output --instance-id ID`), then accept it with: "
            f"ssh-keyscan -t {key.get_name()} {host} >> {self.known_hosts}",
        )


def connect(address: str, *, user: str, key: Path, known_hosts: Path, port: int = 22,
            timeout: float = 15) -> Connection:
    """An open Fabric connection whose host key was verified against `known_hosts`, with
    keepalives on and the agent used but never forwarded.

    Remote commands never read this process's stdin: nothing waits on a prompt.
    """
    key = key.expanduser()
    connection = Connection(
        host=address, user=user, port=port, connect_timeout=timeout, forward_agent=False,
        config=Config(overrides={"run": {"in_stream": False}}),
        connect_kwargs={"key_filename": str(key), "look_for_keys": False,
                        "allow_agent": True},
    )
    client = connection.client
    known = known_hosts.expanduser()
    client._host_keys = paramiko.HostKeys()
    if known.exists():
        client.load_host_keys(str(known))
    client.set_missing_host_key_policy(RefuseUnknown(known))
    try:
        connection.open()
    except paramiko.BadHostKeyException as exc:
        offered = fingerprint(exc.key)
        raise ChangedHost(
            f"{address}'s host key CHANGED: it now offers {offered}",
            fingerprint=offered,
            hint="this can be an attack or a rebuilt host: compare that fingerprint with the "
            "one the host printed (for EC2: `aws ec2 get-console-output --instance-id ID`); "
            f"only if it matches, replace the old entry: ssh-keygen -R {address} -f {known} "
            f"&& ssh-keyscan -t {exc.key.get_name()} {address} >> {known}",
        ) from None
    except paramiko.AuthenticationException:
        if needs_passphrase(key):
            raise OpsError(f"the key {key} is protected by a passphrase and no running "
                           "ssh-agent holds it",
                           hint=f"unlock it once with: ssh-add {key} (in a shell where "
                           "SSH_AUTH_SOCK points at the agent), then run again") from None
        raise OpsError(f"{user}@{address} refused the key {key}",
                       hint="check host.ssh_user and host.ssh_private_key") from None
    except (OSError, paramiko.SSHException) as exc:
        raise OpsError(f"cannot connect to {address}:{port}: {exc}",
                       hint="check the host's address, that it is running, "
                       "and its security group") from None
    keep_alive(connection.transport)
    return connection


def needs_passphrase(key: Path) -> bool:
    """Whether the private key file is encrypted (it cannot be read without a passphrase),
    read as paramiko reads a key_filename: by each key type in turn."""
    for kind in (paramiko.RSAKey, paramiko.ECDSAKey, paramiko.Ed25519Key):
        try:
            kind.from_private_key_file(str(key))
        except paramiko.PasswordRequiredException:
            return True
        except (OSError, ValueError, paramiko.SSHException):
            continue
        return False
    return False


def keep_alive(transport: paramiko.Transport) -> None:
    """Keepalives every KEEPALIVE seconds; on Linux, TCP gives up on a peer that has not
    acknowledged them (or anything else) for DEAD_AFTER seconds, which ends the connection."""
    transport.set_keepalive(KEEPALIVE)
    sock = transport.sock
    if isinstance(sock, socket.socket) and hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, DEAD_AFTER * 1000)
