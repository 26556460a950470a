"""IAM and bucket policy documents compared by meaning, and merged by statement id (pure).

AWS hands a document back in its own spelling: a one-element list may come back as a string,
lists in another order. Comparing canonical forms keeps a second provision quiet.
"""

from __future__ import annotations

import json
from typing import Any

VERSION = "2012-10-17"
_LISTS = ("Action", "NotAction", "Resource", "NotResource")


def parsed(document: Any) -> Any:
    """A policy document as read back: a JSON string, or already parsed (None stays None)."""
    return json.loads(document) if isinstance(document, str) else document


def canonical(statement: dict[str, Any]) -> dict[str, Any]:
    """A statement with single values and lists spelled one way (sorted lists)."""
    found = dict(statement)
    for key in _LISTS:
        if key in found:
            found[key] = _sorted(found[key])
    if isinstance(found.get("Principal"), dict):
        found["Principal"] = {k: _sorted(v) for k, v in found["Principal"].items()}
    return found


def same(a: Any, b: Any) -> bool:
    """Whether two documents grant the same: same statements, whatever their order."""
    if not a or not b:
        return a == b
    return _key(a) == _key(b)


def statements(document: Any) -> list[dict[str, Any]]:
    """A document's statements as a list (AWS accepts a lone statement object)."""
    found = (parsed(document) or {}).get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def lacking(document: Any, ours: list[dict[str, Any]]) -> list[str]:
    """The Sids of `ours` that `document` lacks or holds with another meaning."""
    have = {s.get("Sid"): canonical(s) for s in statements(document)}
    return [s["Sid"] for s in ours if have.get(s["Sid"]) != canonical(s)]


def merged(document: Any, ours: list[dict[str, Any]]) -> dict[str, Any]:
    """`document` with `ours` put in by Sid: every other statement kept, in its order."""
    sids = {s["Sid"] for s in ours}
    kept = [s for s in statements(document) if s.get("Sid") not in sids]
    return {"Version": (parsed(document) or {}).get("Version", VERSION),
            "Statement": kept + ours}


def _sorted(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else [value]


def _key(document: Any) -> list[str]:
    return sorted(json.dumps(canonical(s), sort_keys=True) for s in statements(document))
