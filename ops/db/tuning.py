"""tune-db's pure planning: desired parameters, the diff, the apply-method split, batches.

Values are strings in each parameter's own unit (what RDS parameter groups and pg_settings.setting
hold): shared_buffers and effective_cache_size in 8kB pages, work_mem and maintenance_work_mem
in kB.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from ops.db.pg_settings import Setting
from ops.db.sizing import DB_CLASSES
from ops.errors import OpsError
from ops.plan import Action, Change, Plan

# About 10 connections per service pool (HikariCP); the Reference Distribution runs 13+ services
# that hold one (../shared/reference/openlmis.md). The lab stack stands in with the same shape.
POOLED_SERVICES = {"ref-distro": 13, "lab": 13}
POOL_SIZE = 10
# Superuser slots, migrations, parallel dump/restore jobs, psql sessions, monitoring.
HEADROOM = 50
# The documented floor is 150; 200 keeps a margin and is what provision gives a new group.
MIN_CONNECTIONS = 200
MIB = 1024
BATCH = 20  # ModifyDBParameterGroup takes at most 20 parameters per call
MEMORY_BUDGET = 0.9  # share of the class's memory the worst case may take
# Parameters that exist only on RDS (not in pg_settings): how they apply.
RDS_ONLY = {"rds.logical_replication": Setting("rds.logical_replication", "postmaster", "bool")}
REPLICATION = {"max_wal_senders": "10", "max_replication_slots": "10",
               "max_logical_replication_workers": "4"}
MEMORY_UNITS = {"8kB": 8, "kB": 1}


@dataclass(frozen=True)
class Parameter:
    """A parameter to set: the value in its own unit, and whether it waits for a reboot."""

    name: str
    value: str
    static: bool


@dataclass(frozen=True)
class Sizing:
    """What the desired values were computed from, for the operator to read."""

    instance_class: str
    memory_mib: int
    services: int

    def line(self) -> str:
        return (f"{self.instance_class} ({self.memory_mib // MIB} GiB); {self.services} services "
                f"x {POOL_SIZE} connections + {HEADROOM} headroom")


def sizing(instance_class: str, stack: str) -> Sizing:
    """The class's memory and the stack's pooled services; OpsError for an unknown class."""
    if instance_class not in DB_CLASSES:
        raise OpsError(f"unknown memory size for instance class {instance_class!r}",
                       hint="use a current class (db.t4g.*, db.m6g.*, db.r6g.* ...), "
                       "or add it to ops/db/sizing.py DB_CLASSES")
    return Sizing(instance_class, int(DB_CLASSES[instance_class][1] * MIB),
                  POOLED_SERVICES.get(stack, POOLED_SERVICES["ref-distro"]))


def max_connections(services: int) -> int:
    """Services x pool size + headroom, rounded up to tens; never under MIN_CONNECTIONS."""
    wanted = services * POOL_SIZE + HEADROOM
    return max(-(-wanted // 10) * 10, MIN_CONNECTIONS)


def desired(size: Sizing, *, logical_replication: bool, rds: bool) -> dict[str, str]:
    """The parameters for a class and stack: connections, memory, optional logical replication."""
    mem = size.memory_mib
    connections = max_connections(size.services)
    shared = mem // 4
    maintenance = min(max(mem // 16, 64), 2048)
    work = int((mem * MEMORY_BUDGET - shared - maintenance) // connections)
    params = {
        "max_connections": str(connections),
        "shared_buffers": str(shared * 128),
        "effective_cache_size": str(mem * 3 // 4 * 128),
        "maintenance_work_mem": str(maintenance * MIB),
        "work_mem": str(min(max(work, 1), 64) * MIB),
    }
    if logical_replication:
        params.update({"rds.logical_replication": "1"} if rds else {"wal_level": "logical"})
        params.update(REPLICATION)
    return params


def check(params: Mapping[str, str], settings: Mapping[str, Setting], memory_mib: int) -> None:
    """Refuse, before anything changes, values the engine rejects or the memory cannot hold."""
    problems = []
    for name, value in params.items():
        setting = settings.get(name)
        why = setting.rejects(value) if setting else "the engine has no such parameter"
        if why:
            problems.append(f"{name} = {value}: {why}")
    mib = {n: int(params[n]) * MEMORY_UNITS[settings[n].unit] // MIB for n in
           ("shared_buffers", "maintenance_work_mem", "work_mem", "max_connections")
           if n in params and n in settings and settings[n].unit in MEMORY_UNITS}
    if {"shared_buffers", "maintenance_work_mem", "work_mem"} <= mib.keys():
        worst = (mib["shared_buffers"] + mib["maintenance_work_mem"]
                 + int(params.get("max_connections", "0")) * mib["work_mem"])
        if worst > memory_mib * MEMORY_BUDGET:
            problems.append(
                f"shared_buffers + maintenance_work_mem + max_connections x work_mem = "
                f"{worst} MiB does not fit {MEMORY_BUDGET:.0%} of the class's {memory_mib} MiB")
    if problems:
        raise OpsError("refusing these parameters, nothing was changed:\n  "
                       + "\n  ".join(problems),
                       hint="use a larger instance class, or fewer connections")


def same(current: str | None, wanted: str, setting: Setting) -> bool:
    """Whether a current value already is the wanted one (booleans and numbers normalised)."""
    if current is None:
        return False
    if setting.vartype == "bool":
        truthy = ("on", "true", "1", "yes")
        return (current.lower() in truthy) == (wanted.lower() in truthy)
    if setting.vartype in ("integer", "real"):
        try:
            return float(current) == float(wanted)
        except ValueError:
            return False
    return current == wanted


def human(value: str | None, setting: Setting) -> str:
    """A value as an operator reads it: memory in MB, unset as (default)."""
    if value is None:
        return "(default)"
    if setting.unit in MEMORY_UNITS and value.isdigit():
        kib = int(value) * MEMORY_UNITS[setting.unit]
        return f"{kib // MIB}MB" if kib % MIB == 0 else f"{kib}kB"
    return value


def diff(current: Mapping[str, str | None], wanted: Mapping[str, str],
         settings: Mapping[str, Setting]) -> Plan[Parameter]:
    """One UPDATE per parameter whose value differs, saying whether it needs a reboot."""
    plan: Plan[Parameter] = Plan()
    for name, value in wanted.items():
        setting = settings[name]
        if same(current.get(name), value, setting):
            continue
        how = "static: needs reboot" if setting.static else "dynamic: applies now"
        plan.add(Change(Action.UPDATE, name,
                        f"{human(current.get(name), setting)} → {human(value, setting)} ({how})",
                        payload=Parameter(name, value, setting.static)))
    return plan


def apply_method(parameter: Parameter) -> str:
    """The RDS ApplyMethod: static parameters wait for a reboot, dynamic ones apply now."""
    return "pending-reboot" if parameter.static else "immediate"


def rds_parameters(parameters: Sequence[Parameter]) -> list[dict[str, str]]:
    """ModifyDBParameterGroup's Parameters for these."""
    return [{"ParameterName": p.name, "ParameterValue": p.value,
             "ApplyMethod": apply_method(p)} for p in parameters]


def batches(items: Sequence[dict[str, str]], size: int = BATCH) -> Iterator[list[dict[str, str]]]:
    """Consecutive batches of at most `size` (the API's limit)."""
    for start in range(0, len(items), size):
        yield list(items[start:start + size])
