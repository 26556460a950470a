"""Where the lab keeps what it generates: SSH key, known_hosts, secrets, emulator address."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.config import ROOT

LABEL = "org.openlmis.ops.lab"


@dataclass(frozen=True)
class LabState:
    """The lab's files under one directory; `name` prefixes every container and network."""

    dir: Path
    name: str

    @classmethod
    def current(cls) -> LabState:
        return cls(
            dir=Path(os.environ.get("OPS_LAB_DIR", ROOT / ".lab")),
            name=os.environ.get("OPS_LAB_NAME", "openlmis-lab"),
        )

    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def network(self) -> str:
        return self.name

    def ensure_dir(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def ensure_key(self) -> Path:
        """The SSH key the lab's hosts accept; generated once."""
        self.ensure_dir()
        if not self.key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{self.name}",
                 "-f", str(self.key)],
                check=True,
            )
        return self.key

    def read(self, name: str) -> dict[str, Any]:
        path = self.dir / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def write(self, name: str, data: dict[str, Any]) -> None:
        self.ensure_dir()
        path = self.dir / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.chmod(0o600)
        tmp.replace(path)

    def secret(self, name: str) -> str:
        """A lab secret, generated on first use and kept (mode 0600) for later runs: 32 hex
        digits, at least one a decimal digit, which OpenLMIS' password rules accept too (see
        ops.stack.credentials.check_password)."""
        stored = self.read("secrets")
        if name not in stored:
            value = secrets.token_hex(16)
            while value.isalpha():
                value = secrets.token_hex(16)
            stored[name] = value
            self.write("secrets", stored)
        return stored[name]
