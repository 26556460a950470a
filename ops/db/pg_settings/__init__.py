"""PostgreSQL's own description of its settings, per major version, kept in the repo.

Each `postgresNN.tsv` is `pg_settings` of a real server of that version (name, context, type,
unit, bounds, enum values). Regenerate one with `python -m ops.db.pg_settings.regenerate`
(see that module). The AWS emulator does not say which parameters are static; this does.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ops.errors import OpsError

HERE = Path(__file__).parent
COLUMNS = ("name", "context", "vartype", "unit", "min_val", "max_val", "enumvals")
QUERY = (
    "SELECT name, context, vartype, coalesce(unit, ''), coalesce(min_val, ''), "
    "coalesce(max_val, ''), coalesce(array_to_string(enumvals, ','), '') "
    "FROM pg_settings ORDER BY name"
)


@dataclass(frozen=True)
class Setting:
    """One server setting as pg_settings describes it."""

    name: str
    context: str
    vartype: str
    unit: str = ""
    min_val: str = ""
    max_val: str = ""
    enumvals: str = ""

    @property
    def static(self) -> bool:
        """Only a server restart applies it (RDS: ApplyType static, pending-reboot)."""
        return self.context == "postmaster"

    def rejects(self, value: str) -> str | None:
        """Why the engine would refuse `value` (in the setting's own unit); None if it accepts."""
        if self.context == "internal":
            return "it is read-only (internal)"
        if self.vartype in ("integer", "real"):
            try:
                number = float(value)
            except ValueError:
                return f"{value!r} is not a number"
            if self.vartype == "integer" and not number.is_integer():
                return f"{value!r} is not an integer"
            if self.min_val and number < float(self.min_val):
                return f"{value} is below the minimum {self.min_val}{_unit(self.unit)}"
            if self.max_val and number > float(self.max_val):
                return f"{value} is above the maximum {self.max_val}{_unit(self.unit)}"
        if self.vartype == "enum" and value not in self.enumvals.split(","):
            return f"{value!r} is not one of {self.enumvals.replace(',', ', ')}"
        if self.vartype == "bool" and value.lower() not in ("on", "off", "true", "false", "1", "0"):
            return f"{value!r} is not a boolean"
        return None


def _unit(unit: str) -> str:
    return f" (unit {unit})" if unit else ""


def path(major: int) -> Path:
    return HERE / f"postgres{major}.tsv"


@cache
def load(major: int) -> dict[str, Setting]:
    """Every setting of PostgreSQL `major`, by name; OpsError when no table exists for it."""
    file = path(major)
    if not file.is_file():
        known = sorted(p.stem for p in HERE.glob("postgres*.tsv"))
        raise OpsError(f"no pg_settings table for PostgreSQL {major} ({file.name})",
                       hint=f"known: {', '.join(known)}; generate it with "
                       "python -m ops.db.pg_settings.regenerate (see its docstring)")
    with file.open(newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        header = next(rows)
        if tuple(header) != COLUMNS:
            raise OpsError(f"{file}: unexpected columns {header}")
        return {row[0]: Setting(*row) for row in rows}
