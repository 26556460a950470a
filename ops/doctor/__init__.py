"""doctor: a preflight of everything a task depends on outside this toolkit (see checks)."""
