"""Approval at a real terminal (a pseudo-terminal on standard input) and without one."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from ops.approval import Approval, Scope

REVIEW = """
from ops.approval import Approval, Scope
from ops.errors import OpsError
try:
    applied = Approval({options}).review(Scope("prod", "111122223333", "af-south-1"),
                                         "prod: 1 change(s)", ["+ something"])
    print("applied" if applied else "held back")
except OpsError as exc:
    print(f"refused: {{exc}}")
"""


def review(answer: str | None, options: str = "") -> str:
    """Run a review in a child whose standard input is a terminal answering `answer`, or is
    no terminal at all (None); what it printed."""
    code = REVIEW.format(options=options)
    if answer is None:
        return subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60).stdout
    leader, follower = pty.openpty()
    try:
        os.write(leader, f"{answer}\n".encode())
        return subprocess.run([sys.executable, "-c", code], stdin=follower,
                              capture_output=True, text=True, timeout=60).stdout
    finally:
        os.close(leader)
        os.close(follower)


@pytest.mark.parametrize(("answer", "options", "outcome"), [
    ("prod", "", "applied"),                 # the environment's name typed
    ("yes", "", "refused: not confirmed"),   # anything else is no
    (None, "", "refused: refusing to apply 1 change(s) to prod without confirmation"),
    (None, "yes=True", "applied"),
    (None, "plan_only=True", "held back"),
    ("prod", "plan_only=True", "held back"),  # --plan never asks
])
def test_review_applies_only_once_approved(answer: str | None, options: str,
                                           outcome: str) -> None:
    out = review(answer, options)
    assert "environment prod · account 111122223333 · region af-south-1" in out
    assert "+ something" in out
    assert outcome in out


def test_no_changes_need_no_approval_and_are_not_pending(
        capsys: pytest.CaptureFixture[str]) -> None:
    approval = Approval()
    assert not approval.review(Scope("lab", "123456789012", "eu-west-1"), "lab", [])
    assert not approval.pending and "no changes" in capsys.readouterr().out
    assert approval.record["plan"] == {"title": "lab", "changes": []}
