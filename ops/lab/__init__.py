"""The embedded local lab: an AWS API emulator, SSH hosts and a PostgreSQL, on one machine.

Its emulator and database client come with the toolkit's `lab` extra; without it, the first
use of the lab (a lab.* task, or any task on a lab environment) stops with one clear line.
"""

from importlib.util import find_spec

from ops.errors import OpsError

_MISSING = [name for name in ("moto", "psycopg") if find_spec(name) is None]
if _MISSING:
    raise OpsError(f"the lab needs {' and '.join(_MISSING)}, from the toolkit's lab extra, "
                   "which is not installed here",
                   hint="run: make setup (or: pip install -c constraints.txt -e '.[lab]')")
