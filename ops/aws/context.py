"""What one provision/status/destroy run shares: the environment, clients, ids found or made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ops.aws.session import client
from ops.config import Environment


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
    """Ids of the environment's resources as they become known, warnings, DNS records owed."""

    env: Environment
    ids: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    records: list[DnsRecord] = field(default_factory=list)

    def aws(self, service: str) -> Any:
        """The shared client for `service` (see ops.aws.session.client)."""
        return client(self.env, service)

    def record(self, record: DnsRecord) -> None:
        if record not in self.records:
            self.records.append(record)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)
