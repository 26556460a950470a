"""The `inv` command: Invoke's program under the toolkit's own name and version.

It finds tasks.py as Invoke's `inv` does; `inv -V` names this toolkit, not Invoke. A flag left
without its value is named as the operator typed it (`--from`), not as Invoke's internal
argument object; arguments after `--` are refused, not dropped, unless the task reads them.
"""

import re
from importlib import metadata

from invoke import Program
from invoke.exceptions import ParseError

DISTRIBUTION = "openlmis-ops"

# The tasks that read the words after `--` (inv exec SERVICE -- CMD...).
READS_REMAINDER = {"exec"}
_ARGUMENT = re.compile(
    r"Flag <Argument: (\w+)(?: \(([\w, ]+)\))?[^>]*> needed value and was not given one!")


def version() -> str:
    """The installed distribution's version (pyproject.toml's [project] version)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def flag_message(message: str) -> str:
    """Invoke's parse error as the operator reads it: the flag spelled as on the command line."""
    found = _ARGUMENT.fullmatch(message)
    if not found:
        return message
    name, short = found.group(1).strip("_").replace("_", "-"), found.group(2)
    spelled = f"--{name} (-{short})" if short else f"--{name}"
    return f"{spelled} needs a value and was given none"


class OpsProgram(Program):
    """Invoke's program, its parse errors naming flags as they are typed."""

    def parse_core_args(self) -> None:
        try:
            super().parse_core_args()
        except ParseError as exc:
            raise ParseError(flag_message(str(exc)), exc.context) from None

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as exc:
            raise ParseError(flag_message(str(exc)), exc.context) from None
        # Invoke would drop them silently: `inv status -- --env prod` acting on the default
        named = {context.name for context in self.tasks if context.name}
        if self.core.remainder and not named & READS_REMAINDER:
            raise ParseError(f"{', '.join(sorted(named)) or 'inv'} takes no arguments after '--' "
                             f"(got {self.core.remainder!r})")


program = OpsProgram(name=DISTRIBUTION, binary="inv", binary_names=["inv"], version=version())
