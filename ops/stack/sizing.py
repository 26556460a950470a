"""The host's memory model: what the stack needs, what an instance type offers. Pure.

One model for deploy (warns), provision (warns before anything changes) and size-db
(recommends a host): the need is the services' mem_limits as deploy runs them (the toolkit's
own compose file included) plus one overhead figure.
"""

from __future__ import annotations

from ops.stack.compose import Service

GIB = 1024**3
# What the host needs besides the containers' limits. An estimate, rounded up to 2 GiB:
# not all of an instance's advertised memory reaches the OS (an EC2 16 GiB type shows ~15.3 GiB
# in MemTotal); Ubuntu with dockerd and containerd idles at ~0.5 GiB; the services without a
# mem_limit (ref-distro 3.19.2: consul, nginx with consul-template, rsyslog, redis, proftpd)
# take a few hundred MiB; the rest is page cache for images, logs and the JVMs' jars. Swap
# (host.swap_gb) is not counted: a JVM that swaps is too slow to pass its health checks.
OVERHEAD_GIB = 2
# Memory (GiB) of the x86_64 EC2 types a host is likely to use (the host's image is amd64):
# general purpose (m) 4 GiB per vCPU, memory optimized (r) 8, compute optimized (c) 2, and
# the burstable t3/t3a by size. Provision asks AWS about any other type.
_VCPUS = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32}
_GIB_PER_VCPU = {"c": 2, "m": 4, "r": 8}
INSTANCE_GIB: dict[str, float] = {
    **{f"{family}.{size}": _GIB_PER_VCPU[family[0]] * cpus
       for family in ("m4", "m5", "m5a", "m6i", "m6a", "m7i", "m7a", "r5", "r6i", "r6a", "r7i",
                      "r7a", "c5", "c6i", "c6a", "c7i", "c7a")
       for size, cpus in _VCPUS.items()},
    **{f"{family}.{size}": gib for family in ("t3", "t3a")
       for size, gib in (("micro", 1), ("small", 2), ("medium", 4), ("large", 8),
                         ("xlarge", 16), ("2xlarge", 32))},
}


def limits(services: list[Service]) -> int:
    """The services' mem_limits added up, in bytes (a service without one counts 0)."""
    return sum(s.mem_limit for s in services)


def need(services: list[Service]) -> int:
    """The memory a host needs for the services, in bytes: their limits plus the overhead."""
    return limits(services) + OVERHEAD_GIB * GIB


def explain(services: list[Service]) -> str:
    """How the need adds up, in words."""
    return (f"the services' memory limits add up to {limits(services) / GIB:.1f} GiB, "
            f"+{OVERHEAD_GIB} GiB for the OS, Docker and the services without a limit = "
            f"{need(services) / GIB:.1f} GiB")


def family(instance_type: str) -> str:
    return instance_type.split(".")[0]


def smallest(services: list[Service], of_family: str) -> str | None:
    """The smallest type of the family (in INSTANCE_GIB) that holds the services, if any."""
    fitting = sorted((gib, name) for name, gib in INSTANCE_GIB.items()
                     if family(name) == of_family and gib * GIB >= need(services))
    return fitting[0][1] if fitting else None


def fit(services: list[Service], instance_type: str, gib: float | None = None) -> str | None:
    """None when the services fit the instance's memory (`gib`, else INSTANCE_GIB's); else
    why not and which type of its family fits."""
    gib = gib or INSTANCE_GIB.get(instance_type)
    if gib is None:
        return f"instance type {instance_type} is unknown: {explain(services)}, not checked"
    if need(services) <= gib * GIB:
        return None
    bigger = smallest(services, family(instance_type))
    suggestion = f"; {bigger} ({INSTANCE_GIB[bigger]:g} GiB) fits" if bigger else ""
    return (f"{explain(services)}, more than {instance_type} offers ({gib:g} GiB): under load "
            f"the kernel kills services{suggestion}")
