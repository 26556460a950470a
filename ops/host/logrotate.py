"""Rotation of the stack's syslog files, by the host's logrotate, checked hourly. Pure.

The OpenLMIS services log to the `log` service (openlmis-rsyslog v3 `rsyslog.conf`), which
writes `/var/log/messages` and its siblings in the `syslog` volume and never rotates them
(its image installs logrotate but `startup.sh` runs only rsyslogd). The host rotates them in
place in the volume's directory: `copytruncate`, so rsyslogd keeps writing to the file it holds
open. logrotate's own timer runs daily; a drop-in makes it hourly, so `maxsize` is enforced
within the hour (the other logrotate.d files are time-gated and unaffected).
"""

from __future__ import annotations

import hashlib

from ops.host.remote import Step

CONF_PATH = "/etc/logrotate.d/openlmis-syslog"
TIMER_DROPIN = "/etc/systemd/system/logrotate.timer.d/openlmis-hourly.conf"
VOLUMES = "/var/lib/docker/volumes"
# openlmis-rsyslog v3 rsyslog.conf: every file its rules write under /var/log
FILES = ("messages", "postgres", "secure", "maillog", "cron", "spooler", "boot.log")
MAXSIZE = "100M"
KEEP = 7
DETAIL = f"syslog volume files rotated at {MAXSIZE} or daily, {KEEP} kept, checked hourly"

_DROPIN = b"""# openlmis-ops: logrotate hourly, so the syslog volume's maxsize holds within the hour
[Timer]
OnCalendar=
OnCalendar=hourly
AccuracySec=1m
RandomizedDelaySec=5m
"""


def volume_dir(project: str) -> str:
    """Where the `syslog` volume of the compose project lives on the host."""
    return f"{VOLUMES}/{project}_syslog/_data"


def conf(project: str) -> bytes:
    """The logrotate.d file for the project's syslog volume."""
    paths = "\n".join(f"{volume_dir(project)}/{name}" for name in FILES)
    return (f"# openlmis-ops: the stack's rsyslog files (the `log` service's syslog volume)\n"
            f"{paths} {{\n    daily\n    maxsize {MAXSIZE}\n    rotate {KEEP}\n"
            "    compress\n    delaycompress\n    missingok\n    notifempty\n"
            "    copytruncate\n}\n").encode()


def wanted_sha256(project: str) -> str:
    """The checksum the facts command reports when both files are as wanted."""
    return hashlib.sha256(conf(project) + _DROPIN).hexdigest()


def fact_commands() -> list[str]:
    """Facts: both files' checksum, and the timer's state (`enabled/active`)."""
    return [f"echo logrotate=$(cat {CONF_PATH} {TIMER_DROPIN} 2>/dev/null | sha256sum "
            "| cut -d' ' -f1)",
            "echo logrotate_timer=$(systemctl is-enabled logrotate.timer 2>/dev/null)/"
            "$(systemctl is-active logrotate.timer 2>/dev/null)"]


def steps(project: str, install: list[str]) -> list[Step]:
    """Install logrotate (the commands `install`, when it is missing), write both files, run
    the timer hourly."""
    return [*(("run", c) for c in install),
            ("put", CONF_PATH, conf(project), 0o644),
            ("run", f"install -d -m 0755 {TIMER_DROPIN.rsplit('/', 1)[0]}"),
            ("put", TIMER_DROPIN, _DROPIN, 0o644),
            ("run", "systemctl daemon-reload && systemctl enable --now logrotate.timer "
                    "&& systemctl restart logrotate.timer")]
