"""size-db: the database tier, instance class and host size for a workload. Pure functions.

The tiers follow OpenLMIS's published guidance (openlmis-deployment, "Amazon Web Services"):
dev/QA/private demo → db.t2.micro (max_connections raised above 150); CD, public demo, UAT,
small production → db.t2.medium; over 500 products, over 100,000 requisitions or frequent
reports → db.t2.large and up. The db.t2 classes are being retired by AWS (RDS for PostgreSQL 17
does not offer them), so each tier maps to a current class.
"""

from __future__ import annotations

from dataclasses import dataclass

from ops.config import DatabaseConfig, Environment, HostConfig, Workload
from ops.stack import sizing as host_sizing
from ops.stack.compose import Service

PRODUCTS_LARGE = 500
REQUISITIONS_LARGE = 100_000
CONNECTION_FLOOR = 150
GUIDANCE_HOST = "m4.large"  # the EC2 type the same guidance names for the stack

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


def host(services: list[Service], configured: str) -> Choice:
    """The smallest host of the configured type's family (else the default's) that holds the
    stack, by the host memory model (ops.stack.sizing)."""
    known = configured in host_sizing.INSTANCE_GIB
    family = host_sizing.family(configured if known else HostConfig().instance_type)
    name = host_sizing.smallest(services, family)
    why = host_sizing.explain(services)
    if name is None:
        return Choice("host", f"larger than any {family}", f"{why}: no {family} type holds it")
    why += f": {name} ({host_sizing.INSTANCE_GIB[name]:g} GiB)"
    if host_sizing.fit(services, GUIDANCE_HOST):
        why += (f", not the guidance's {GUIDANCE_HOST} "
                f"({host_sizing.INSTANCE_GIB[GUIDANCE_HOST]:g} GiB)")
    if configured != name:
        why += f"; host.instance_type is {configured}"
    return Choice("host", name, why)


def recommend(env: Environment, workload: Workload, services: list[Service]) -> list[Choice]:
    """Every choice for `env` under `workload`, each with one line of explanation; the host
    from the stack's services as deploy runs them."""
    size, size_why = tier(workload, env.database.tier)
    cls, cls_why = db_class(size, workload)
    cpus, gib = DB_CLASSES[cls]
    choices = [
        Choice("tier", f"db.t2.{size} in the guidance", size_why),
        Choice("class", cls, f"{cls_why} ({cpus} vCPU, {gib:g} GiB)"),
        Choice("retired", f"db.t2.{size}", "AWS is retiring the db.t2 classes the guidance names "
               "(RDS for PostgreSQL 17 no longer offers them): use the class above"),
        Choice("max_connections", f"> {CONNECTION_FLOOR}",
               f"about 10 per service pool; the guidance's floor is {CONNECTION_FLOOR}: "
               "inv tune-db sets it"),
        host(services, env.host.instance_type),
    ]
    if env.database.instance_class and env.database.instance_class != cls:
        choices.append(Choice("configured", env.database.instance_class,
                              f"database.instance_class differs from the recommended {cls}"))
    return choices
