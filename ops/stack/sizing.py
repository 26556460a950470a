"""Do the stack's memory limits fit the host's instance type? Pure."""

from __future__ import annotations

from ops.stack.compose import Service

GIB = 1024**3
# Memory of the EC2 types a host is likely to use (GiB).
INSTANCE_GIB = {
    "t3.medium": 4, "t3.large": 8, "t3.xlarge": 16, "t3.2xlarge": 32,
    "m4.large": 8, "m4.xlarge": 16, "m5.large": 8, "m5.xlarge": 16, "m5.2xlarge": 32,
    "m6i.large": 8, "m6i.xlarge": 16, "m6i.2xlarge": 32, "m7i.large": 8, "m7i.xlarge": 16,
    "r6i.large": 16, "r6i.xlarge": 32,
}
# What the OS, Docker and page cache need besides the containers.
RESERVED_GIB = 1


def total_limits(services: list[Service]) -> int:
    return sum(s.mem_limit for s in services)


def fit(services: list[Service], instance_type: str) -> str | None:
    """None when the limits fit the instance's memory; else why not and what to choose."""
    total = total_limits(services)
    gib = INSTANCE_GIB.get(instance_type)
    if gib is None:
        return f"instance type {instance_type} is unknown: memory limits ({total / GIB:.1f} GiB) "\
               "not checked"
    if total <= (gib - RESERVED_GIB) * GIB:
        return None
    bigger = sorted((g, t) for t, g in INSTANCE_GIB.items()
                    if t.split(".")[0] == instance_type.split(".")[0]
                    and (g - RESERVED_GIB) * GIB >= total)
    suggestion = f"; {bigger[0][1]} ({bigger[0][0]} GiB) fits" if bigger else ""
    return (f"the services' memory limits add up to {total / GIB:.1f} GiB, more than "
            f"{instance_type} offers ({gib} GiB, {RESERVED_GIB} GiB kept for the system)"
            f"{suggestion}")
