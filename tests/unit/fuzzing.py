"""What the fuzz tests share: Hypothesis profiles, hostile values, and running `inv` in-process.

The default profile is derandomized (the same examples on every run, CI included);
HYPOTHESIS_PROFILE=explore draws new ones, ten times as many, to look for fresh holes;
HYPOTHESIS_PROFILE=triage reports every failure found at once, unshrunk, while fixing them.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from ops import console, errors
from ops.aws import session as aws_session
from ops.cli import OpsProgram
from ops.tasks import namespace

settings.register_profile(
    "ci", derandomize=True, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile(
    "explore", deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile(  # while fixing: every failure at once, unshrunk
    "triage", deadline=None, database=None, report_multiple_bugs=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)


def examples(count: int) -> int:
    """A test's number of examples: `count` (the unit tier's budget), ten times that to explore."""
    return count * 10 if PROFILE == "explore" else count


# The exit statuses ops/errors.py documents (done, failed, --plan pending, AWS login, ...).
EXIT_CODES = set(errors.EXIT_CODES)

HOSTILE_STRINGS = [
    "", " ", "$(touch /tmp/pwned)", "`id`", "; rm -rf /", "a && b", "x' ; echo '", '"', "'",
    "a\nb", "line\r\nbreak", "nul\x00byte", "\t", "../../../etc/passwd", "~nosuchuser/key",
    "-rf", "--help", "*", "{major.__class__}", "{0}", "%s%n", "\\", "ü-é-ß", "\u202etxt.exe",
    "\ufeffbom", "😀", "a" * 5000, "!!python/object/apply:os.system ['id']", "&anchor",
    "*alias", "null", "true", "0x1F", "1e400", "nan", "-1", "0", "9" * 40,
]

hostile_text = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=40),
    st.text(alphabet="$`;|&<>(){}[]'\"\\\n\r\x00 *?!#~=%,.:/-_aZ09", max_size=30),
)

hostile_numbers = st.one_of(
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.sampled_from([0, -1, 1, 2 ** 31, 2 ** 63, 2 ** 64, 10 ** 400, -(10 ** 400)]),
    st.floats(allow_nan=True, allow_infinity=True),
)

scalars = st.one_of(st.none(), st.booleans(), hostile_numbers, hostile_text)

hostile_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=8,
)


def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No way out: the AWS credential chain is empty (boto3 refuses before any connection),
    its endpoint a closed local port, the Docker engine (the lab's) a socket nobody listens
    on, no lab state, standard input closed; configuration from tmp_path."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "OPS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("OPS_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    monkeypatch.setenv("OPS_LAB_DIR", str(tmp_path / "no-lab"))
    monkeypatch.setenv("OPS_LAB_NAME", "fuzz-no-lab")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    # boto3 sessions and clients made here (no credentials) stay here: later tests get their own
    monkeypatch.setattr(aws_session, "_SESSIONS", {})
    monkeypatch.setattr(aws_session, "_CLIENTS", {})
    return tmp_path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`inv ARGV` in-process through the toolkit's program (ops.cli) and its tasks: the exit
    status and everything printed."""
    kept, argv_kept = console.console, sys.argv  # --json switches the console: put it back
    sys.argv = ["inv", *argv]  # what `inv exec` reads its command from
    try:
        OpsProgram(namespace=namespace(), version="test").run(["inv", *argv], exit=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        console.console, sys.argv = kept, argv_kept
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def assert_clean(code: int, out: str, argv: list[str]) -> None:
    """No traceback, a documented exit status, and on failure a message at all."""
    assert "Traceback" not in out, (argv, out[-3000:])
    assert code in EXIT_CODES, (argv, code, out[:2000])
    if code:
        assert out.strip(), (argv, "failed without a word")
