"""What one provision/status/destroy run shares: the environment, clients, ids found or made."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ops.aws.session import client, emulator_url
from ops.config import Environment

_CLIENTS: dict[tuple[str | None, ...], Any] = {}


@dataclass(frozen=True)
class DnsRecord:
    """A DNS record the topology needs: upserted in Route 53, or printed for the operator."""

    name: str
    type: str
    value: str
    purpose: str
    alias_zone: str | None = None  # an alias (A) in Route 53; a CNAME at other providers

    def line(self) -> str:
        return f"{self.name} {self.type} {self.value}  ({self.purpose})"


@dataclass
class Ctx:
    """Ids of the environment's resources as they become known; clients made once per run."""

    env: Environment
    ids: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    records: list[DnsRecord] = field(default_factory=list)
    _target: tuple[str | None, ...] = ()

    def aws(self, service: str) -> Any:
        """A client for `service`, shared by every run in this process with the same target."""
        env = self.env
        if not self._target:
            endpoint = emulator_url() if env.kind == "lab" else os.environ.get("AWS_ENDPOINT_URL")
            self._target = (env.kind, env.aws.region, env.aws.profile, endpoint)
        key = (*self._target, service)
        if key not in _CLIENTS:
            _CLIENTS[key] = client(env, service)
        return _CLIENTS[key]

    def record(self, record: DnsRecord) -> None:
        if record not in self.records:
            self.records.append(record)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)
