"""The one exception type an operator sees: a message that says what failed and what to do,
and the exit statuses of every task.

Exit statuses (EXIT_CODES is the table; README's conventions point here):

====  ===========  ==========================================================================
code  name         meaning
====  ===========  ==========================================================================
0     OK           done (or nothing to do)
1     FAILED       an expected failure: bad option or config, a refusal, a check that failed
2     PENDING      `--plan`: changes are pending (nothing was changed)
3     AWS_LOGIN    AWS credentials missing, expired or refused (SSO session, ExpiredToken):
                   log in again (`aws sso login --profile X`), then re-run; `doctor` too,
                   when its credentials check failed (else 1 for any failed check, 0 when
                   none did: warnings do not count)
4     TRANSIENT    AWS throttled after retries, or its API did not answer in time: re-run
                   later
5     CUT_SHORT    remote work cut short: the SSH connection dropped mid-command or a command
                   outlived its timeout; the host's state is unknown: re-run (it converges)
130   INTERRUPTED  Ctrl-C: the task and what it ran on the host were stopped
====  ===========  ==========================================================================
"""

OK = 0
FAILED = 1
PENDING = 2
AWS_LOGIN = 3
TRANSIENT = 4
CUT_SHORT = 5
INTERRUPTED = 130  # the shell's status for a command ended by Ctrl-C (128 + SIGINT)

EXIT_CODES: dict[int, str] = {
    OK: "done, or nothing to do",
    FAILED: "an expected failure (bad option or config, a refusal, a failed check)",
    PENDING: "--plan: changes are pending",
    AWS_LOGIN: "AWS credentials missing, expired or refused: log in again, then re-run",
    TRANSIENT: "AWS throttled or not answering in time: re-run later",
    CUT_SHORT: "remote work cut short (connection dropped, command timed out): re-run",
    INTERRUPTED: "interrupted by Ctrl-C",
}


class OpsError(Exception):
    """An expected failure: printed as one clear message, never as a traceback; the task
    exits with `code` (see EXIT_CODES)."""

    def __init__(self, message: str, *, hint: str = "", code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message
