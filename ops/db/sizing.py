"""size-db: the database tier, instance class and host size for a workload. Pure functions.

The tiers follow OpenLMIS's published guidance (openlmis-deployment, "Amazon Web Services"):
dev/QA/private demo → db.t2.micro (max_connections raised above 150); CD, public demo, UAT,
small production → db.t2.medium; over 500 products, over 100,000 requisitions or frequent
reports → db.t2.large and up. The db.t2 classes are being retired by AWS (RDS for PostgreSQL 17
does not offer them), so each tier maps to a current class.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import yaml

from ops.config import DatabaseConfig, Environment, Workload

PRODUCTS_LARGE = 500
REQUISITIONS_LARGE = 100_000
CONNECTION_FLOOR = 150

# RDS instance classes: (vCPU, memory GiB). The documented db.t2 ones are kept to map them.
DB_CLASSES: dict[str, tuple[int, float]] = {
    "db.t2.micro": (1, 1), "db.t2.small": (1, 2), "db.t2.medium": (2, 4), "db.t2.large": (2, 8),
    **{f"db.{f}.{s}": (2, m) for f in ("t3", "t4g")
       for s, m in (("micro", 1), ("small", 2), ("medium", 4), ("large", 8))},
    **{f"db.{f}.{s}": (c, m) for f in ("t3", "t4g")
       for s, c, m in (("xlarge", 4, 16), ("2xlarge", 8, 32))},
    **{f"db.{f}.{s}": (c, m) for f in ("m5", "m6g", "m6i", "m7g")
       for s, c, m in (("large", 2, 8), ("xlarge", 4, 16), ("2xlarge", 8, 32),
                       ("4xlarge", 16, 64))},
    **{f"db.{f}.{s}": (c, m) for f in ("r5", "r6g", "r6i", "r7g")
       for s, c, m in (("large", 2, 16), ("xlarge", 4, 32), ("2xlarge", 8, 64),
                       ("4xlarge", 16, 128))},
}

# EC2 hosts for the stack, smallest first: (type, vCPU, memory GiB).
HOSTS = (("m6i.large", 2, 8), ("m6i.xlarge", 4, 16), ("m6i.2xlarge", 8, 32),
         ("m6i.4xlarge", 16, 64))
# Memory the host needs besides the services' limits: OS, Docker, and the services
# without a mem_limit (consul, nginx, log, redis, ftp).
HOST_OVERHEAD_GIB = 2.0
# Sum of mem_limit over openlmis-ref-distro v3.19.2's docker-compose.yml without `db`
# (4 x 1.3G + 9 x 0.7G); used until compose/ref-distro/docker-compose.yml is in the repo.
REF_DISTRO_MEM_GIB = 11.5
STACK_DIR = Path(__file__).resolve().parents[2] / "compose"


@dataclass(frozen=True)
class Choice:
    """One recommendation and the one line that explains it."""

    what: str
    value: str
    why: str


def tier(workload: Workload, env_tier: str) -> tuple[str, str]:
    """The guidance's size (micro, medium, large) and why."""
    if workload.products > PRODUCTS_LARGE:
        return "large", f"{workload.products} products exceed {PRODUCTS_LARGE}: large and up"
    if workload.requisitions > REQUISITIONS_LARGE:
        return "large", (f"{workload.requisitions} requisitions exceed {REQUISITIONS_LARGE:,}: "
                         "large and up")
    if workload.reports_often:
        return "large", "reports run often: large and up"
    if env_tier == "dev":
        return "micro", "development, QA or a private demo: micro"
    return "medium", (f"{env_tier} with a small workload (CD, public demo, UAT, small "
                      "production): medium")


def db_class(size: str, workload: Workload) -> tuple[str, str]:
    """A current RDS class for the guidance's db.t2 size, and why."""
    if workload.idle_most_of_day:
        return f"db.t4g.{size}", (f"idle most of the day: burstable db.t4g.{size} (Graviton; "
                                  f"db.t3.{size} on x86) runs on CPU credits like db.t2")
    if workload.reports_often:
        return "db.r6g.large", ("busy and reporting: memory-optimized db.r6g.large (16 GiB; "
                                "db.r6i.large on x86) keeps report scans in cache")
    why = "busy: fixed performance, db.m6g.large (db.m6i.large on x86)"
    if size != "large":
        why += f" — no fixed-performance class is smaller than large, the {size} tier included"
    return "db.m6g.large", why


def recommended_class(db: DatabaseConfig) -> str:
    """database.instance_class, else the class the guidance gives its tier and workload."""
    if db.instance_class:
        return db.instance_class
    size, _ = tier(db.workload, db.tier)
    return db_class(size, db.workload)[0]


def compose_memory_gib(text: str, *, without: tuple[str, ...] = ("db",)) -> float:
    """Sum of the services' mem_limit in a compose file (G/M/K suffixes are binary)."""
    scale = {"g": 1, "m": Decimal(1) / 1024, "k": Decimal(1) / 1024**2, "b": Decimal(1) / 1024**3}
    total = Decimal(0)
    for name, service in (yaml.safe_load(text).get("services") or {}).items():
        limit = str((service or {}).get("mem_limit") or "").strip().lower()
        if name in without or not limit:
            continue
        unit = limit[-1] if limit[-1] in scale else "b"
        total += Decimal(limit.rstrip("gmkb")) * scale[unit]
    return float(total)


def stack_memory_gib(stack: str) -> tuple[float, str]:
    """The stack's memory limits without the database, and where the figure comes from."""
    compose = STACK_DIR / stack / "docker-compose.yml"
    if compose.is_file() and (gib := compose_memory_gib(compose.read_text())):
        return gib, f"mem_limit sum of compose/{stack}/docker-compose.yml without db"
    return REF_DISTRO_MEM_GIB, "mem_limit sum of ref-distro v3.19.2 without db"


def host(stack_gib: float, source: str, configured: str) -> Choice:
    """The smallest host that holds the stack's limits plus the OS and Docker."""
    need = stack_gib + HOST_OVERHEAD_GIB
    name, cpus, gib = next((h for h in HOSTS if h[2] >= need), HOSTS[-1])
    why = (f"{source} is {stack_gib:.1f} GiB, +{HOST_OVERHEAD_GIB:.0f} GiB for the OS and "
           f"Docker = {need:.1f} GiB: {name} ({cpus} vCPU, {gib} GiB), not the documented "
           "m4.large (8 GiB)")
    if configured != name:
        why += f"; host.instance_type is {configured}"
    return Choice("host", name, why)


def recommend(env: Environment, workload: Workload) -> list[Choice]:
    """Every choice for `env` under `workload`, each with one line of explanation."""
    size, size_why = tier(workload, env.database.tier)
    cls, cls_why = db_class(size, workload)
    cpus, gib = DB_CLASSES[cls]
    stack_gib, source = stack_memory_gib(env.stack.name)
    choices = [
        Choice("tier", f"db.t2.{size} in the guidance", size_why),
        Choice("class", cls, f"{cls_why} ({cpus} vCPU, {gib:g} GiB)"),
        Choice("retired", f"db.t2.{size}", "AWS is retiring the db.t2 classes the guidance names "
               "(RDS for PostgreSQL 17 no longer offers them): use the class above"),
        Choice("max_connections", f"> {CONNECTION_FLOOR}",
               f"about 10 per service pool; the guidance's floor is {CONNECTION_FLOOR}: "
               "inv tune-db sets it"),
        host(stack_gib, source, env.host.instance_type),
    ]
    if env.database.instance_class and env.database.instance_class != cls:
        choices.append(Choice("configured", env.database.instance_class,
                              f"database.instance_class differs from the recommended {cls}"))
    return choices
