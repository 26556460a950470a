"""`python3 -m double ROLE [ARGS]`: the entry point of every stand-in image."""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    role, args = sys.argv[1], sys.argv[2:]
    # As PID 1 Python ignores SIGTERM; the JVM (and Consul, nginx) stop on it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if role == "consul":
        from double import consul
        consul.main(args)
    elif role == "nginx":
        from double import nginx
        nginx.main()
    elif role == "rsyslog":
        # startup.sh: clear a stale pid file, then rsyslogd in the foreground.
        if os.path.exists("/run/rsyslogd.pid"):
            os.remove("/run/rsyslogd.pid")
        os.execv("/usr/sbin/rsyslogd", ["rsyslogd", "-n", "-f", "/etc/rsyslog.conf"])
    elif role in ("redis", "ftp"):
        from double import listeners
        listeners.main(role)
    elif role == "wait-for-postgres":
        from double import waitdb
        waitdb.main(args)
    else:
        from double import service
        service.main(role)


if __name__ == "__main__":
    main()
