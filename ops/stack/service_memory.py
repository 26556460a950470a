"""stack.memory: a service's Java heap and memory limit, checked against each other and written
into the toolkit's compose file. Pure.

Upstream sets each Java service's heap in its JAVA_OPTS (`-server -Xmx1024m -Dlogging...`).
Compose merges `environment` per key, so the toolkit's file carries the whole JAVA_OPTS value:
upstream's, with only the -Xmx replaced. A larger heap needs a larger mem_limit to be of use
(upstream's heaps already fill about three quarters of theirs), so both can be set.

The rule: a heap takes at most 80 % of the service's mem_limit and leaves at least 192 MiB
beside it. A JVM's memory is more than its heap: metaspace (Spring and Hibernate classes,
~100-150 MiB), the JIT's code cache, a 1 MiB stack per thread, the garbage collector's
bookkeeping (a few % of the heap) and direct buffers; when the sum passes mem_limit the kernel
kills the container. Upstream's own settings meet the rule (1024m in 1.3G, 512m in 0.7G).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ops.config import ServiceMemory
from ops.errors import OpsError
from ops.stack.compose import Service, memory_bytes

HEAP_SHARE = 0.8
NON_HEAP_MIB = 192
MIB = 1024**2
_XMX = re.compile(r"-Xmx(\S+)")
_XMS = re.compile(r"-Xms\S+")


def heap_bytes(java_opts: str) -> int | None:
    """The -Xmx in JAVA_OPTS, in bytes (None: none set)."""
    match = _XMX.search(java_opts)
    return memory_bytes(match.group(1)) if match else None


def with_heap(java_opts: str, heap: str) -> str:
    """JAVA_OPTS with its -Xmx replaced by `heap` (added when it has none), and its -Xms if it
    sets one (upstream after 3.19.2 starts with the whole heap: -Xms = -Xmx; a larger -Xms
    than -Xmx stops the JVM), the rest kept."""
    java_opts = _XMS.sub(f"-Xms{heap}", java_opts)
    if _XMX.search(java_opts):
        return _XMX.sub(f"-Xmx{heap}", java_opts)
    return f"{java_opts} -Xmx{heap}".strip()


def max_heap(limit: int) -> int:
    """The largest heap the rule allows under a mem_limit, in bytes."""
    return max(0, min(int(limit * HEAP_SHARE), limit - NON_HEAP_MIB * MIB))


def min_limit(heap: int) -> int:
    """The smallest mem_limit the rule allows for a heap, in bytes."""
    return max(int(heap / HEAP_SHARE), heap + NON_HEAP_MIB * MIB)


def spec(services: list[Service], memory: Mapping[str, ServiceMemory]) -> dict[str, dict]:
    """The compose fields stack.memory sets, by service; OpsError naming the key when a
    service is not in the stack or its heap does not fit under its limit."""
    found = {s.name: s for s in services}
    fields: dict[str, dict] = {}
    for name, wanted in memory.items():
        key = f"stack.memory.{name}"
        service = found.get(name)
        if service is None:
            raise OpsError(f"{key}: the stack has no service {name!r}",
                           hint=f"its services: {', '.join(sorted(found))}")
        if wanted.java_heap and service.java_opts is None:
            raise OpsError(f"{key}.java_heap: {name} sets no JAVA_OPTS, so the toolkit cannot "
                           "set its heap", hint=f"remove {key}.java_heap")
        fields[name] = _fields(key, service, wanted)
    return {name: f for name, f in fields.items() if f}


def _fields(key: str, service: Service, wanted: ServiceMemory) -> dict:
    if not (wanted.java_heap or wanted.mem_limit):
        return {}
    limit = memory_bytes(wanted.mem_limit) if wanted.mem_limit else service.mem_limit
    heap = (memory_bytes(wanted.java_heap) if wanted.java_heap
            else heap_bytes(service.java_opts or ""))
    if heap and not limit:
        raise OpsError(f"{key}.java_heap: {service.name} has no mem_limit for the heap to fit "
                       "under", hint=f"set {key}.mem_limit too")
    if heap and heap > max_heap(limit):
        head = (f"{key}.java_heap: {wanted.java_heap} does not fit under {service.name}'s "
                f"mem_limit ({limit // MIB} MiB)" if wanted.java_heap else
                f"{key}.mem_limit: {wanted.mem_limit} leaves too little for {service.name}'s "
                f"heap ({heap // MIB} MiB, upstream's -Xmx)")
        raise OpsError(
            f"{head}: a heap may take at most {HEAP_SHARE:.0%} of the mem_limit and must leave "
            f"{NON_HEAP_MIB} MiB for the JVM's other memory, so at most {max_heap(limit) // MIB}m",
            hint=f"lower the heap, or set {key}.mem_limit to at least "
                 f"{-(-min_limit(heap) // MIB)}m")
    fields: dict[str, object] = {}
    if wanted.java_heap:
        fields["environment"] = {"JAVA_OPTS": with_heap(service.java_opts or "",
                                                        wanted.java_heap)}
    if wanted.mem_limit:
        fields["mem_limit"] = wanted.mem_limit
    return fields

