"""The Environment model: load and validate config/<env>.yml.

A bad file yields one OpsError naming the file, each key path and what is wrong. Secrets are
never values in the file, only references (see ops.secrets), resolved at run time.
"""

from __future__ import annotations

import os
import re
import reprlib
from ipaddress import IPv4Network
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.functional_validators import AfterValidator, BeforeValidator

from ops.errors import OpsError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENV = "lab"

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_SECRET_REF = re.compile(r"^(env|ssm|secretsmanager|lab):[!-~]{1,2048}$")
# Each value below reaches a shell command, a file on the host, an AWS name or a path: only the
# characters those take, so nothing in a file can break out of where it is put.
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.:-]{0,252}[A-Za-z0-9])?$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]{0,254}$")
_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 60
_SHOWN.maxlist = _SHOWN.maxdict = 4
_SHOWN.maxlevel = 2


def shown(value: object) -> str:
    """A value as a message quotes it: its repr, cut short, on one line."""
    return _SHOWN.repr(value)


def _matching(pattern: str, what: str) -> AfterValidator:
    """A string of `pattern` (whole), else an error saying what the key takes."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{shown(value)} is not {what}")
        return value

    return AfterValidator(check)


def _path(value: Path) -> Path:
    if "\0" in str(value):
        raise ValueError(f"{shown(str(value))} is not a path: it holds a NUL character")
    try:
        value.expanduser()
    except RuntimeError:
        raise ValueError(f"{shown(str(value))}: no such user's home directory") from None
    return value


def _cidr_text(value: object) -> object:
    """A network is written as text: ipaddress would take `true` or `7` as an address."""
    if not isinstance(value, str | IPv4Network):
        raise ValueError(f"{shown(value)} is not a network like 10.40.0.0/16")
    return value


def _whole(value: object) -> object:
    """A count is a number: pydantic would take `true` as 1."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _domain(value: str) -> str:
    if not _DOMAIN.fullmatch(value.lower()):
        raise ValueError(f"{shown(value)} is not a valid domain name (e.g. openlmis.example.org)")
    return value.lower()


def _region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise ValueError(f"{shown(value)} is not an AWS region name (e.g. eu-west-1)")
    return value


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError(f"{shown(value)} is not an e-mail address (letters, digits, ._%+-)")
    return value


def _secret_ref(value: str) -> str:
    if not _SECRET_REF.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is not a secret reference: use env:VARIABLE, ssm:/parameter/name, "
            "secretsmanager:secret-id or lab:name (printable ASCII, no spaces) — never the "
            "secret itself"
        )
    return value


Domain = Annotated[str, AfterValidator(_domain)]
Region = Annotated[str, AfterValidator(_region)]
Email = Annotated[str, AfterValidator(_email)]
SecretRef = Annotated[str, AfterValidator(_secret_ref)]
LocalPath = Annotated[Path, AfterValidator(_path)]
Cidr = Annotated[IPv4Network, BeforeValidator(_cidr_text)]
Whole = Annotated[int, BeforeValidator(_whole)]
HostName = Annotated[str, _matching(_HOST.pattern, "a host name or IP address")]
# Resource and role names: what RDS and PostgreSQL take unquoted, and a shell word as is.
SqlName = Annotated[str, _matching(r"[a-z][a-z0-9_]{0,62}", "a name of lower-case letters, "
                                   "digits and '_', starting with a letter (at most 63)")]
Token = Annotated[str, _matching(r"[A-Za-z0-9_.+@=,/-]{1,128}",
                                 "a name without spaces or shell characters (at most 128)")]
# settings.env: KEY='value' lines, single-quoted; a value holds no quote and no line break.
SettingName = Annotated[str, _matching(r"[A-Za-z_][A-Za-z0-9_.]{0,127}",
                                       "a setting name (letters, digits, '_' and '.')")]
SettingValue = Annotated[str, _matching(r"[^\x00-\x1f\x7f']{0,4096}",
                                        "a setting value settings.env can carry: no single "
                                        "quote, line break or control character")]
ServiceName = Annotated[str, _matching(r"[a-z0-9][a-z0-9_.-]{0,62}", "a compose service name")]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AwsConfig(Section):
    region: Region = "eu-west-1"
    profile: Token | None = None


VpcId = Annotated[str, _matching(r"vpc-[0-9a-z]{1,32}", "a VPC id (vpc-…)")]
SubnetId = Annotated[str, _matching(r"subnet-[0-9a-z]{1,32}", "a subnet id (subnet-…)")]


class NetworkConfig(Section):
    vpc_cidr: Cidr = IPv4Network("10.40.0.0/16")
    existing_vpc_id: VpcId | None = None
    existing_public_subnet_ids: list[SubnetId] = []
    existing_private_subnet_ids: list[SubnetId] = []
    admin_cidrs: list[Cidr] = []
    allow_ssh_from_anywhere: bool = False

    @model_validator(mode="after")
    def _ssh_world(self) -> NetworkConfig:
        if any(c.prefixlen == 0 for c in self.admin_cidrs) and not self.allow_ssh_from_anywhere:
            raise ValueError(
                "admin_cidrs contains 0.0.0.0/0, which opens SSH to the world: "
                "list your admin networks, or set allow_ssh_from_anywhere: true"
            )
        return self


InstanceType = Annotated[str, _matching(r"[a-z0-9-]{1,20}\.[a-z0-9-]{1,20}",
                                        "an EC2 instance type (e.g. m6i.xlarge)")]


MAX_NODES = 9  # a Swarm larger than this is past what one RDS instance and one config hold


class HostConfig(Section):
    # the smallest m6i that holds ref-distro (ops.stack.sizing)
    instance_type: InstanceType = "m6i.xlarge"
    root_volume_gb: Whole = Field(30, ge=30, le=16384)  # EBS gp3's largest volume
    ami: Annotated[str, _matching(r"ami-[0-9a-z]{1,32}", "an AMI id (ami-…)")] | None = None
    ssh_user: Annotated[str, _matching(r"[a-z_][a-z0-9_-]{0,31}", "a user name")] = "ubuntu"
    ssh_public_key: LocalPath = Path("~/.ssh/id_ed25519.pub")
    ssh_private_key: LocalPath = Path("~/.ssh/id_ed25519")
    known_hosts: LocalPath = Path("~/.ssh/known_hosts")
    address: HostName | None = None
    swap_gb: Whole = Field(4, ge=0, le=1024)
    docker_source: Literal["official", "distro"] = "official"
    # Nodes of a Docker Swarm (1: one host, no swarm); managers None: 3 from 3 nodes, else 1.
    count: Whole = Field(1, ge=1, le=MAX_NODES)
    managers: Whole | None = Field(None, ge=1, le=MAX_NODES)
    # mesh: Swarm's own (a virtual IP per service, the ingress routing mesh); host: DNS round
    # robin and ports published on the node a task runs on, for hosts without IPVS (the lab).
    routing: Literal["mesh", "host"] = "mesh"

    @property
    def swarm(self) -> bool:
        return self.count > 1

    @property
    def manager_count(self) -> int:
        if self.managers is not None:
            return self.managers
        return 3 if self.count >= 3 else 1

    @model_validator(mode="after")
    def _nodes(self) -> HostConfig:
        if self.manager_count > self.count:
            raise ValueError(f"managers {self.manager_count} is more than count {self.count}")
        if self.manager_count % 2 == 0:
            raise ValueError(f"managers {self.manager_count}: give an odd number (Raft keeps a "
                             "majority of managers; an even number tolerates no more losses "
                             "than the odd number below it)")
        if self.count > 1 and self.address:
            raise ValueError("address names one existing host; count > 1 needs the nodes "
                             "provision creates: remove address or set count: 1")
        return self


# Far past any OpenLMIS deployment: bounds that keep the sizing's arithmetic in range.
MAX_PRODUCTS, MAX_REQUISITIONS = 10**9, 10**12


class Workload(Section):
    products: Whole = Field(0, ge=0, le=MAX_PRODUCTS)
    requisitions: Whole = Field(0, ge=0, le=MAX_REQUISITIONS)
    reports_often: bool = False
    idle_most_of_day: bool = True


def least_ceiling(storage_gb: int) -> int:
    """The smallest storage autoscaling ceiling RDS accepts above `storage_gb`: 10 % more."""
    return -(-storage_gb * 11 // 10)


class DatabaseConfig(Section):
    tier: Literal["dev", "uat", "production"] = "dev"
    instance_class: Annotated[str, _matching(r"db\.[a-z0-9-]{1,20}\.[a-z0-9-]{1,20}",
                                             "an RDS class (e.g. db.m6g.large)")] | None = None
    engine_version: Annotated[str, _matching(r"[1-9][0-9]?(\.[0-9]{1,3})?",
                                             "a PostgreSQL version (e.g. 17 or 17.4)")] = "17"
    storage_gb: Whole = Field(50, ge=20, le=65536)  # RDS gp3's largest
    name: SqlName = "open_lmis"
    master_username: SqlName = "postgres"
    master_password: SecretRef
    app_username: Annotated[str, _matching(r"[a-z_][a-z0-9_]{0,62}", "a role name of "
                                           "lower-case letters, digits and '_' (at most 63)")] \
        = "openlmis"
    app_password: SecretRef | None = None
    ca_bundle: LocalPath | None = None
    # RDS storage autoscaling's ceiling; None = four times storage_gb (at most 65536).
    max_storage_gb: Whole | None = Field(None, ge=22, le=65536)
    backup_retention_days: Whole = Field(7, ge=7, le=35)
    logical_replication: bool = False
    workload: Workload = Workload()

    @model_validator(mode="after")
    def _autoscaling_room(self) -> DatabaseConfig:
        # RDS refuses a ceiling less than 10 % above the allocated storage (USER_PIOPS.Autoscaling).
        if self.max_storage_gb is not None and self.max_storage_gb < least_ceiling(
                self.storage_gb):
            raise ValueError(f"max_storage_gb {self.max_storage_gb} must be at least 10 % above "
                             f"storage_gb {self.storage_gb}: {least_ceiling(self.storage_gb)} "
                             "or more (RDS storage autoscaling's rule)")
        return self


class MailConfig(Section):
    from_address: Email
    verify_domain: bool = True
    smtp_host: HostName | None = None
    smtp_port: Whole = Field(465, ge=1, le=65535)
    smtp_username: Token | None = None
    smtp_password: SecretRef | None = None


# stack.memory: per service, its Java heap and memory limit (ops.stack.service_memory).
_JAVA_SIZE = re.compile(r"^[1-9]\d{0,8}[kmg]$", re.IGNORECASE)
_MEM_SIZE = re.compile(r"^[1-9]\d{0,8}(\.\d{1,3})?[kmg]$", re.IGNORECASE)


def _java_size(value: str) -> str:
    if not _JAVA_SIZE.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a heap size like 1536m or 2g (-Xmx's units)")
    return value


def _mem_size(value: str) -> str:
    if not _MEM_SIZE.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a memory limit like 2g or 1536m")
    return value


class ServiceMemory(Section):
    java_heap: Annotated[str, AfterValidator(_java_size)] | None = None  # -Xmx in JAVA_OPTS
    mem_limit: Annotated[str, AfterValidator(_mem_size)] | None = None  # the container's


# A release's name: a directory here and on the host, the start of its id (deploy --release
# and rollback --to take the same).
RELEASE = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,79}"
RELEASE_WHAT = "a release name or id: up to 80 letters, digits and . _ + -"
ReleaseName = Annotated[str, _matching(RELEASE, RELEASE_WHAT)]


class StackConfig(Section):
    name: Literal["ref-distro", "lab"] = "ref-distro"
    release: ReleaseName = "3.19.2"
    # Where the release directories are (default compose/<name>/releases): your own copy,
    # e.g. with an edited config/, or a release the toolkit does not ship yet.
    releases_dir: LocalPath | None = None
    # Written into the release's `.env` and settings.env: names, comma-separated.
    spring_profiles_active: Annotated[str, _matching(
        r"[A-Za-z0-9_-]{1,64}( *, *[A-Za-z0-9_-]{1,64}){0,15}",
        "Spring profile names separated by commas (e.g. production)")] = "production"
    https: bool = True
    demo_may_be_wiped: bool = False
    push_images: bool = False
    keep_releases: Whole = Field(5, ge=2, le=100)
    health_timeout_s: Whole = Field(900, ge=10, le=86400)
    health_stable_s: Whole = Field(15, ge=0, le=3600)
    nginx_timeout_s: Whole = Field(300, ge=1, le=4000)  # the ALB's longest idle timeout
    settings: dict[SettingName, SettingValue] = {}
    secrets: dict[SettingName, SecretRef] = {}
    memory: dict[ServiceName, ServiceMemory] = {}
    # What replaces openlmis-auth's bootstrap credentials (see ops.stack.credentials).
    admin_password: SecretRef | None = None
    trusted_client_secret: SecretRef | None = None


# A systemd OnCalendar expression (systemd.time(7)), e.g. "*-*-* 02:00:00" or "Sun 04:00".
Calendar = Annotated[str, _matching(r"[A-Za-z0-9*:/,.~ -]{1,64}", "a systemd calendar "
                                    "expression (e.g. \"*-*-* 02:00:00\", see systemd.time)")]


class ScheduleConfig(Section):
    """Backups the host takes by itself, by systemd timer (None: not scheduled)."""

    dump: Calendar | None = "*-*-* 02:00:00"
    drill: Calendar | None = "Sun *-*-* 04:00:00"
    # The backup-age alarm: no successful dump within this many hours. It evaluates hourly
    # periods, and CloudWatch evaluates at most seven days of them (Period x EvaluationPeriods
    # <= 604800 s): hence at most 168.
    max_age_hours: Whole = Field(26, ge=1, le=24 * 7)


class BackupConfig(Section):
    bucket: Annotated[str, _matching(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
                                     "an S3 bucket name (3-63 lower-case letters, digits, "
                                     "'.' and '-')")] | None = None
    create_bucket: bool = False
    keep_last: Whole = Field(7, ge=1, le=10000)
    keep_days: Whole = Field(30, ge=1, le=36500)
    dump_jobs: Whole = Field(2, ge=1, le=64)
    # verify-backup's scratch server for dumps: its image ({major}: the server's major version)
    # and its memory limit (None: half the host's available memory, see ops.db.drill).
    drill_image: str = "postgis/postgis:{major}-3.5"
    drill_memory_mb: Whole | None = Field(None, ge=256, le=1048576)
    schedule: ScheduleConfig = ScheduleConfig()

    @model_validator(mode="after")
    def _drill_image(self) -> BackupConfig:
        try:
            image = self.drill_image.format(major=17)
        except (KeyError, IndexError, ValueError, AttributeError, TypeError):
            image = None
        if image is None or not _IMAGE.fullmatch(image):
            raise ValueError(f"drill_image {shown(self.drill_image)}: an image reference "
                             "(e.g. postgis/postgis:{major}-3.5); the only placeholder it may "
                             "hold is {major}")
        return self


class AlertsConfig(Section):
    """Who hears about alarms: each address gets an SNS subscription to confirm."""

    emails: list[Email] = []


ZoneId = Annotated[str, _matching(r"(/hostedzone/)?[A-Z0-9]{1,32}",
                                  "a Route 53 hosted zone id (e.g. Z1RWWTK7Y8UDDQ)")]


class Environment(Section):
    """One environment: everything the tasks need to know, validated."""

    name: str
    kind: Literal["aws", "lab"] = "aws"
    project: Annotated[str, _matching(r"[a-z][a-z0-9-]{0,31}", "a project name of lower-case "
                                      "letters, digits and '-', starting with a letter "
                                      "(at most 32)")] = "openlmis"
    domain: Domain
    route53_zone_id: ZoneId | None = None
    aws: AwsConfig = AwsConfig()
    network: NetworkConfig = NetworkConfig()
    host: HostConfig = HostConfig()
    database: DatabaseConfig
    mail: MailConfig
    stack: StackConfig = StackConfig()
    backups: BackupConfig = BackupConfig()
    alerts: AlertsConfig = AlertsConfig()

    @property
    def is_production(self) -> bool:
        return self.database.tier == "production"

    @property
    def prefix(self) -> str:
        """Name prefix for every resource of this environment."""
        return f"{self.project}-{self.name}"

    @property
    def bucket(self) -> str:
        return self.backups.bucket or f"{self.prefix}-backups"


def config_dir() -> Path:
    return Path(os.environ.get("OPS_CONFIG_DIR", ROOT / "config"))


def env_name(name: str | None) -> str:
    """The environment a task acts on: --env, else OPS_ENV, else lab. An empty --env (an unset
    shell variable) is no choice made, refused by `load`: never silently the default."""
    return name if name is not None else os.environ.get("OPS_ENV") or DEFAULT_ENV


# A configuration is a few dozen keys: more than this is a mistake, or YAML aliases expanding
# (a "billion laughs" file), refused before anything walks it.
MAX_BYTES = 1 << 20
MAX_VALUES = 10_000
MAX_ERRORS = 25
# libyaml's safe loader: bounded nesting and linear time, where the pure-Python scanner takes
# seconds (quadratic) on a few thousand nested brackets before it fails. Safe either way.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(name: str | None = None, *, path: Path | None = None) -> Environment:
    """Load and validate one environment's file; OpsError with every problem found."""
    name = env_name(name)
    if path is None and not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", name):
        raise OpsError(f"environment {shown(name)} (--env or OPS_ENV): names are lower-case "
                       "letters, digits and '-', starting with a letter (max 31)")
    path = path or config_dir() / f"{name}.yml"
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", path.stem):
        raise OpsError(
            f"{path.name}: environment names are lower-case letters, digits and '-' (max 31)",
        )
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yml") if p.stem != "example")
        raise OpsError(
            f"no configuration for environment {name!r}: {path} does not exist",
            hint=f"known environments: {', '.join(known) or 'none'}; "
            "copy config/example.yml to start a new one",
        )
    data = _read(path)
    if not isinstance(data, dict):
        raise OpsError(f"{path}: the top level must be a mapping of keys to values")
    if "name" in data:
        raise OpsError(f"{path}: name: remove this key; the environment's name is the file name")
    try:
        return Environment.model_validate({**data, "name": path.stem})
    except ValidationError as exc:
        raise OpsError(f"{path} is not valid:\n" + _describe(exc)) from None


def _read(path: Path) -> object:
    """The file's YAML (safe: no tags that make objects), a bounded tree of plain values."""
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        raise OpsError(f"{path}: {len(raw)} bytes is too large for a configuration "
                       f"(at most {MAX_BYTES})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        number = raw[:exc.start].count(b"\n") + 1
        raise OpsError(f"{path}: line {number} is not UTF-8 text") from None
    try:
        data = yaml.load(text, Loader=_LOADER) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        problem = getattr(exc, "problem", None) or exc
        raise OpsError(f"{path}:{line} is not valid YAML: {problem}") from None
    except RecursionError:
        raise OpsError(f"{path}: is not valid YAML: nested too deeply") from None
    except ValueError as exc:  # a scalar YAML reads as a date or number that cannot be one
        raise OpsError(f"{path}: is not valid YAML: a value cannot be read ({exc})") from None
    _check_size(path, data)
    return data


def _check_size(path: Path, data: object) -> None:
    """Refuse a tree of more than MAX_VALUES values (aliases counted each time they are used,
    so one that refers to itself counts without end)."""
    pending, seen = [data], 0
    while pending:
        seen += 1
        if seen > MAX_VALUES:
            raise OpsError(f"{path}: more than {MAX_VALUES} values (YAML aliases expanding?): "
                           "a configuration is a few dozen keys")
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _describe(exc: ValidationError) -> str:
    lines = []
    errors = exc.errors()
    for err in errors[:MAX_ERRORS]:
        key = ".".join(_key(p) for p in err["loc"] if p != "[key]")  # [key]: the key is wrong
        key = key.replace(".[", "[") or "(top level)"
        if err["type"] == "extra_forbidden":
            what = "unknown key (check the spelling against config/example.yml)"
        elif err["type"] == "missing":
            what = "required key is missing"
        else:
            what = err["msg"].removeprefix("Value error, ")
            if "input" in err and err["type"] not in ("value_error", "assertion_error"):
                what += f" (got {shown(err['input'])})"
        lines.append(f"  {key}: {what}")
    if len(errors) > MAX_ERRORS:
        lines.append(f"  … and {len(errors) - MAX_ERRORS} more")
    return "\n".join(lines)


def _key(part: object) -> str:
    """One step of a key path: [index], a plain key as is, any other key quoted and cut short."""
    if isinstance(part, int):
        return f"[{part}]"
    if isinstance(part, str) and re.fullmatch(r"[\w-]{1,64}", part, re.ASCII):
        return part
    return shown(part)
