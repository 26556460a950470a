"""What deploy plans for the database's extensions and the stack's role: pure."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from ops.db import approle, extensions
from ops.errors import OpsError
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


FRESH = approle.Facts(exists=False, member=False, db_owner="postgres", master_schemas=(),
                      password_ok=False)


def test_the_stacks_role_is_planned_once_and_then_left_alone() -> None:
    [change] = approle.plan("open_lmis", "openlmis", "postgres", FRESH)
    assert change.action is Action.CREATE
    assert change.line() == ("+ database role openlmis: created; postgres made a member; "
                             "owner of open_lmis (now postgres)")
    done = approle.Facts(True, True, "openlmis", (), password_ok=True)
    assert approle.plan("open_lmis", "openlmis", "postgres", done) == []


def test_a_database_the_master_used_is_handed_over_and_a_changed_password_set() -> None:
    used = approle.Facts(True, True, "postgres", ("referencedata", "requisition"), False)
    [change] = approle.plan("open_lmis", "openlmis", "postgres", used)
    assert change.action is Action.UPDATE
    assert change.detail == ("password set to database.app_password; owner of open_lmis (now "
                             "postgres); owner of the schemas referencedata, requisition (now "
                             "postgres's)")
    sql = approle.setup_sql(change.payload, "s3cret-Pa55")
    assert "s3cret-Pa55" not in sql and "PASSWORD 'SCRAM-SHA-256$4096:" in sql
    assert "ALTER SCHEMA %I OWNER TO %I" in sql and "CREATE ROLE" not in sql


# RFC 7677's example exchange (user "user", password "pencil").
AUTH_MESSAGE = (b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
CLIENT_PROOF = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
SERVER_SIGNATURE = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_the_password_travels_as_a_scram_verifier_that_checks_rfc_7677s_exchange() -> None:
    verifier = approle.scram_verifier("pencil", base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="))
    stored, server = (base64.b64decode(k) for k in verifier.split("$")[2].split(":"))
    assert base64.b64encode(hmac.new(server, AUTH_MESSAGE, "sha256").digest()).decode() \
        == SERVER_SIGNATURE
    signature = hmac.new(stored, AUTH_MESSAGE, "sha256").digest()
    client_key = bytes(a ^ b for a, b in zip(base64.b64decode(CLIENT_PROOF), signature,
                                             strict=True))
    assert hashlib.sha256(client_key).digest() == stored
    with pytest.raises(OpsError, match="printable ASCII"):
        approle.scram_verifier("mot de passe é")
