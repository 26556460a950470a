"""Logging as logback does it with the file `-Dlogging.config` names (or the service's own).

A small logback: loggers with levels, appender-refs and additivity; appenders of the
SyslogAppender class (host, port, facility, suffixPattern) send UDP syslog, ConsoleAppender
writes stdout, an AsyncAppender passes on to the appenders it refers to. Including Spring
Boot's base.xml adds CONSOLE to the root, as it does upstream; including console-appender.xml
only defines CONSOLE (spring-boot 2.x `org/springframework/boot/logging/logback/`).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import re
import socket
import sys
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass

SEVERITY = {"ERROR": 3, "WARN": 4, "INFO": 6, "DEBUG": 7, "TRACE": 7}
FACILITIES = {f"LOCAL{n}": 16 + n for n in range(8)} | {"USER": 1, "DAEMON": 3}
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")
BASE_XML = "org/springframework/boot/logging/logback/base.xml"
CONSOLE_XML = "org/springframework/boot/logging/logback/console-appender.xml"

# What a service image carries when no logging.config is given: console and syslog.
EMBEDDED = """<configuration>
  <appender name="SYSLOG" class="ch.qos.logback.classic.net.SyslogAppender">
    <syslogHost>log</syslogHost><port>514</port><facility>LOCAL0</facility>
    <suffixPattern>[%15.15thread] %level %logger - %msg%n</suffixPattern>
  </appender>
  <appender name="CONSOLE" class="ch.qos.logback.core.ConsoleAppender"/>
  <root level="DEBUG"><appender-ref ref="CONSOLE"/><appender-ref ref="SYSLOG"/></root>
</configuration>"""


@dataclass(frozen=True)
class Appender:
    kind: str  # "syslog" or "console"
    host: str = ""
    port: int = 514
    facility: int = 16
    pattern: str = "%msg"


@dataclass(frozen=True)
class Route:
    """Where a logger's events go: the level it lets through and its appenders."""

    level: str
    appenders: tuple[Appender, ...]


def config_path(java_opts: str) -> str | None:
    """The file `-Dlogging.config=` names in JAVA_OPTS."""
    match = re.search(r"-Dlogging\.config=(\S+)", java_opts)
    return match.group(1) if match else None


def route(xml_text: str, logger: str) -> Route:
    """The level and appenders logback gives `logger` under this configuration."""
    root = ET.fromstring(xml_text)
    elements = {a.get("name", ""): a for a in root.iter("appender")}
    loggers: dict[str, tuple[str | None, list[str], bool]] = {}
    root_refs: list[str] = []
    root_level = "DEBUG"
    included = {i.get("resource") for i in root.iter("include")}
    if BASE_XML in included:
        root_refs, root_level = ["CONSOLE"], "INFO"
    consoles = {"CONSOLE": Appender("console")} if included & {BASE_XML, CONSOLE_XML} else {}
    for element in root.iter("root"):
        root_level = (element.get("level") or root_level).upper()
        root_refs += [r.get("ref", "") for r in element.iter("appender-ref")]
    for element in root.iter("logger"):
        loggers[element.get("name", "")] = (
            (element.get("level") or "").upper() or None,
            [r.get("ref", "") for r in element.iter("appender-ref")],
            element.get("additivity", "true") != "false")
    level, refs, name = None, [], logger
    while name:
        if name in loggers:
            own_level, own_refs, additive = loggers[name]
            level = level or own_level
            refs += own_refs
            if not additive:
                break
        name = name.rpartition(".")[0]
    else:
        refs += root_refs
    found = tuple(dict.fromkeys(a for r in refs for a in _resolve(r, elements, consoles)))
    return Route(level or root_level, found)


def _resolve(name: str, elements: dict[str, ET.Element],
             consoles: dict[str, Appender]) -> list[Appender]:
    """The appenders an appender-ref reaches: an AsyncAppender's own refs, else itself."""
    element = elements.get(name)
    if element is None:
        return [consoles[name]] if name in consoles else []
    if "AsyncAppender" in element.get("class", ""):
        return [a for r in element.iter("appender-ref")
                for a in _resolve(r.get("ref", ""), elements, consoles)]
    return [_appender(element)]


def syslog_line(appender: Appender, record: logging.LogRecord, host: str) -> bytes:
    """A SyslogAppender datagram as logback's SyslogStartConverter starts it: `<PRI>`, the
    time as `MMM dd HH:mm:ss` with the day space-padded (`%s %2d %s`), the host name and a
    space; then the suffix pattern."""
    level = _level(record)
    pri = appender.facility * 8 + SEVERITY[level]
    when = datetime.datetime.fromtimestamp(record.created)
    stamp = f"{when:%b} {when.day:2d} {when:%H:%M:%S}"
    return f"<{pri}>{stamp} {host} {_suffix(appender.pattern, record)}".encode()


class LogbackHandler(logging.Handler):
    """Sends each record to the appenders of its logger's route."""

    def __init__(self, xml_text: str) -> None:
        super().__init__(logging.DEBUG)
        self.xml_text = xml_text
        self.routes: dict[str, Route] = {}
        self.host = socket.gethostname()  # InetAddress.getLocalHost().getHostName()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self.guard:
            found = self.routes.get(record.name)
            if found is None:
                found = self.routes[record.name] = route(self.xml_text, record.name)
        if LEVELS.index(_level(record)) < LEVELS.index(found.level):
            return
        for appender in found.appenders:
            if appender.kind == "console":
                stamp = datetime.datetime.fromtimestamp(record.created).strftime("%F %T")
                print(f"{stamp} {_level(record)} {record.name} - {record.getMessage()}",
                      file=sys.stdout, flush=True)
            else:
                # logback's SyslogAppender drops what it cannot send, too
                with contextlib.suppress(OSError):
                    self.sock.sendto(syslog_line(appender, record, self.host),
                                     (appender.host, appender.port))


def setup(xml_text: str) -> None:
    """Route every Python logger through logback's rules (ParseError: not a configuration)."""
    ET.fromstring(xml_text)
    top = logging.getLogger()
    top.handlers[:] = [LogbackHandler(xml_text)]
    top.setLevel(logging.DEBUG)


def _appender(element: ET.Element) -> Appender:
    if "SyslogAppender" not in element.get("class", ""):
        return Appender("console")

    def text(tag: str, default: str) -> str:
        found = element.find(tag)
        return (found.text or default).strip() if found is not None else default

    return Appender("syslog", host=text("syslogHost", "localhost"),
                    port=int(text("port", "514")),
                    facility=FACILITIES.get(text("facility", "USER").upper(), 1),
                    pattern=text("suffixPattern", "[%thread] %logger %msg"))


def _level(record: logging.LogRecord) -> str:
    return {"WARNING": "WARN", "CRITICAL": "ERROR"}.get(record.levelname, record.levelname)


def _suffix(pattern: str, record: logging.LogRecord) -> str:
    values = {"thread": record.threadName or "main", "level": _level(record),
              "logger": record.name, "msg": record.getMessage(), "n": "", "L": "0",
              "M": record.funcName}

    def one(match: re.Match[str]) -> str:
        width, word, option = match.group(1), match.group(2), match.group(3)
        value = values.get(word, match.group(0))
        if word == "logger" and option:
            value = _abbreviate(value, int(option))
        if width:
            low, _, high = width.partition(".")
            value = value[-int(high):] if high else value
            value = value.rjust(int(low)) if low else value
        return value

    return re.sub(r"%([\d.]*)(thread|level|logger|msg|n|L|M)\b(?:\{(\d+)\})?", one,
                  pattern).rstrip()


def _abbreviate(name: str, length: int) -> str:
    """logback's `%logger{length}` (TargetLengthBasedClassNameAbbreviator): package segments
    cut to their first letter, leftmost first, until the name fits; the class name stays."""
    parts = name.split(".")
    for i in range(len(parts) - 1):
        if len(".".join(parts)) <= length:
            break
        parts[i] = parts[i][:1]
    return ".".join(parts)
