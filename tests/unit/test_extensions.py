"""What deploy plans for the database's extensions: pure."""

from __future__ import annotations

from ops.db import extensions
from ops.plan import Action


def test_missing_extensions_are_planned_and_present_ones_are_not() -> None:
    [change] = extensions.plan("open_lmis", {"plpgsql", "uuid-ossp"})
    assert change.action is Action.CREATE
    assert change.payload == extensions.Create(("postgis",))
    assert change.line() == "+ extensions postgis in open_lmis: before the stack starts"
    assert extensions.plan("open_lmis", {"plpgsql", "uuid-ossp", "postgis"}) == []


def test_without_a_client_to_ask_with_every_required_extension_is_planned_if_missing() -> None:
    [change] = extensions.plan("open_lmis", None)
    assert change.payload == extensions.Create(("uuid-ossp", "postgis"))
    assert "if missing" in change.line()


def test_extension_names_are_quoted_identifiers() -> None:
    assert extensions.create_sql(("uuid-ossp", 'x"; DROP DATABASE y; --')) == (
        'CREATE EXTENSION IF NOT EXISTS "uuid-ossp";\n'
        'CREATE EXTENSION IF NOT EXISTS "x""; DROP DATABASE y; --";\n')
