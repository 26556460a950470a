"""The Environment model: load and validate config/<env>.yml.

A bad file yields one OpsError naming the file, each key path and what is wrong. Secrets are
never values in the file, only references (see ops.secrets), resolved at run time.
"""

from __future__ import annotations

import os
import re
from ipaddress import IPv4Network
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.functional_validators import AfterValidator

from ops.errors import OpsError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENV = "lab"

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_SECRET_REF = re.compile(r"^(env|ssm|secretsmanager|lab):\S+$")


def _domain(value: str) -> str:
    if not _DOMAIN.match(value.lower()):
        raise ValueError(f"{value!r} is not a valid domain name (e.g. openlmis.example.org)")
    return value.lower()


def _region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError(f"{value!r} is not an AWS region name (e.g. eu-west-1)")
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


def _secret_ref(value: str) -> str:
    if not _SECRET_REF.match(value):
        raise ValueError(
            f"{value!r} is not a secret reference: use env:VARIABLE, ssm:/parameter/name, "
            "secretsmanager:secret-id or lab:name — never the secret itself"
        )
    return value


Domain = Annotated[str, AfterValidator(_domain)]
Region = Annotated[str, AfterValidator(_region)]
Email = Annotated[str, AfterValidator(_email)]
SecretRef = Annotated[str, AfterValidator(_secret_ref)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AwsConfig(Section):
    region: Region = "eu-west-1"
    profile: str | None = None


class NetworkConfig(Section):
    vpc_cidr: IPv4Network = IPv4Network("10.40.0.0/16")
    existing_vpc_id: str | None = None
    existing_public_subnet_ids: list[str] = []
    existing_private_subnet_ids: list[str] = []
    admin_cidrs: list[IPv4Network] = []
    allow_ssh_from_anywhere: bool = False

    @model_validator(mode="after")
    def _ssh_world(self) -> NetworkConfig:
        if any(c.prefixlen == 0 for c in self.admin_cidrs) and not self.allow_ssh_from_anywhere:
            raise ValueError(
                "admin_cidrs contains 0.0.0.0/0, which opens SSH to the world: "
                "list your admin networks, or set allow_ssh_from_anywhere: true"
            )
        return self


class HostConfig(Section):
    instance_type: str = "m6i.xlarge"  # the smallest m6i that holds ref-distro (ops.stack.sizing)
    root_volume_gb: int = Field(30, ge=30)
    ami: str | None = None
    ssh_user: str = "ubuntu"
    ssh_public_key: Path = Path("~/.ssh/id_ed25519.pub")
    ssh_private_key: Path = Path("~/.ssh/id_ed25519")
    known_hosts: Path = Path("~/.ssh/known_hosts")
    address: str | None = None
    swap_gb: int = Field(4, ge=0)
    docker_source: Literal["official", "distro"] = "official"


class Workload(Section):
    products: int = Field(0, ge=0)
    requisitions: int = Field(0, ge=0)
    reports_often: bool = False
    idle_most_of_day: bool = True


class DatabaseConfig(Section):
    tier: Literal["dev", "uat", "production"] = "dev"
    instance_class: str | None = None
    engine_version: str = "17"
    storage_gb: int = Field(50, ge=20)
    name: str = "open_lmis"
    master_username: str = "postgres"
    master_password: SecretRef
    app_username: str = Field("openlmis", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    app_password: SecretRef | None = None
    ca_bundle: Path | None = None
    backup_retention_days: int = Field(7, ge=7, le=35)
    logical_replication: bool = False
    workload: Workload = Workload()


class MailConfig(Section):
    from_address: Email
    verify_domain: bool = True
    smtp_host: str | None = None
    smtp_port: int = 465
    smtp_username: str | None = None
    smtp_password: SecretRef | None = None


# stack.memory: per service, its Java heap and memory limit (ops.stack.service_memory).
_JAVA_SIZE = re.compile(r"^\d+[kmg]$", re.IGNORECASE)
_MEM_SIZE = re.compile(r"^\d+(\.\d+)?[kmg]$", re.IGNORECASE)


def _java_size(value: str) -> str:
    if not _JAVA_SIZE.match(value):
        raise ValueError(f"{value!r} is not a heap size like 1536m or 2g (-Xmx's units)")
    return value


def _mem_size(value: str) -> str:
    if not _MEM_SIZE.match(value):
        raise ValueError(f"{value!r} is not a memory limit like 2g or 1536m")
    return value


class ServiceMemory(Section):
    java_heap: Annotated[str, AfterValidator(_java_size)] | None = None  # -Xmx in JAVA_OPTS
    mem_limit: Annotated[str, AfterValidator(_mem_size)] | None = None  # the container's


class StackConfig(Section):
    name: Literal["ref-distro", "lab"] = "ref-distro"
    release: str = "3.19.2"
    # Where the release directories are (default compose/<name>/releases): your own copy,
    # e.g. with an edited config/, or a release the toolkit does not ship yet.
    releases_dir: Path | None = None
    spring_profiles_active: str = "production"
    https: bool = True
    demo_may_be_wiped: bool = False
    push_images: bool = False
    keep_releases: int = Field(5, ge=2)
    health_timeout_s: int = Field(900, ge=10)
    health_stable_s: int = Field(15, ge=0)
    nginx_timeout_s: int = Field(300, ge=1)
    settings: dict[str, str] = {}
    secrets: dict[str, SecretRef] = {}
    memory: dict[str, ServiceMemory] = {}
    # What replaces openlmis-auth's bootstrap credentials (see ops.stack.credentials).
    admin_password: SecretRef | None = None
    trusted_client_secret: SecretRef | None = None


class BackupConfig(Section):
    bucket: str | None = None
    create_bucket: bool = False
    keep_last: int = Field(7, ge=1)
    keep_days: int = Field(30, ge=1)
    dump_jobs: int = Field(2, ge=1)
    # verify-backup's scratch server for dumps: its image ({major}: the server's major version)
    # and its memory limit (None: half the host's available memory, see ops.db.drill).
    drill_image: str = "postgis/postgis:{major}-3.5"
    drill_memory_mb: int | None = Field(None, ge=256)

    @model_validator(mode="after")
    def _drill_image(self) -> BackupConfig:
        try:
            self.drill_image.format(major=17)
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"drill_image {self.drill_image!r}: the only placeholder it may "
                             "hold is {major}") from None
        return self


class Environment(Section):
    """One environment: everything the tasks need to know, validated."""

    name: str
    kind: Literal["aws", "lab"] = "aws"
    project: str = "openlmis"
    domain: Domain
    route53_zone_id: str | None = None
    aws: AwsConfig = AwsConfig()
    network: NetworkConfig = NetworkConfig()
    host: HostConfig = HostConfig()
    database: DatabaseConfig
    mail: MailConfig
    stack: StackConfig = StackConfig()
    backups: BackupConfig = BackupConfig()

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
    """The environment a task acts on: --env, else OPS_ENV, else lab."""
    return name or os.environ.get("OPS_ENV") or DEFAULT_ENV


def load(name: str | None = None, *, path: Path | None = None) -> Environment:
    """Load and validate one environment's file; OpsError with every problem found."""
    name = env_name(name)
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
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise OpsError(f"{path}:{line} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise OpsError(f"{path}: the top level must be a mapping of keys to values")
    if "name" in data:
        raise OpsError(f"{path}: name: remove this key; the environment's name is the file name")
    try:
        return Environment.model_validate({**data, "name": path.stem})
    except ValidationError as exc:
        raise OpsError(f"{path} is not valid:\n" + _describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"])
        key = key.replace(".[", "[") or "(top level)"
        if err["type"] == "extra_forbidden":
            what = "unknown key (check the spelling against config/example.yml)"
        elif err["type"] == "missing":
            what = "required key is missing"
        else:
            what = err["msg"].removeprefix("Value error, ")
            if "input" in err and err["type"] not in ("value_error", "assertion_error"):
                what += f" (got {err['input']!r})"
        lines.append(f"  {key}: {what}")
    return "\n".join(lines)
