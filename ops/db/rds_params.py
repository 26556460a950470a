"""tune-db on RDS: the environment's parameter group and instance, read, modified, rebooted."""

from __future__ import annotations

from typing import Any

from ops import console
from ops.aws import tags
from ops.aws.session import client
from ops.config import Environment
from ops.db import pg_settings, tuning
from ops.db.pg_settings import Setting
from ops.errors import OpsError
from ops.plan import Plan

REBOOT_TIMEOUT_S = 900


class RdsParameters:
    """The parameter group `<prefix>-postgresNN` and the instance `<prefix>-db`."""

    rds = True

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.api = client(env, "rds")
        self.group = tags.db_parameter_group(env)
        self.instance_id = tags.db_instance_id(env)

    @property
    def label(self) -> str:
        return f"parameter group {self.group} of {self.instance_id}"

    def settings(self) -> dict[str, Setting]:
        major = int(self.env.database.engine_version.split(".")[0])
        return {**pg_settings.load(major), **tuning.RDS_ONLY}

    def instance(self) -> dict[str, Any]:
        try:
            found = self.api.describe_db_instances(DBInstanceIdentifier=self.instance_id)
        except self.api.exceptions.DBInstanceNotFoundFault:
            raise OpsError(f"{self.env.name} has no database instance {self.instance_id}",
                           hint="run: inv provision") from None
        instance = found["DBInstances"][0]
        groups = [g["DBParameterGroupName"] for g in instance.get("DBParameterGroups", [])]
        if self.group not in groups:
            console.warn(f"{self.instance_id} uses {', '.join(groups) or 'no group'}, not "
                         f"{self.group}: run inv provision to attach it")
        return instance

    def instance_class(self) -> str:
        return self.instance()["DBInstanceClass"]

    def current(self, names: list[str]) -> dict[str, str | None]:
        """The group's values for `names`; None where the engine default applies."""
        values: dict[str, str | None] = dict.fromkeys(names)
        pages = self.api.get_paginator("describe_db_parameters").paginate(
            DBParameterGroupName=self.group)
        try:
            for page in pages:
                for param in page["Parameters"]:
                    if param["ParameterName"] in values:
                        values[param["ParameterName"]] = param.get("ParameterValue")
        except self.api.exceptions.DBParameterGroupNotFoundFault:
            raise OpsError(f"{self.env.name} has no parameter group {self.group}",
                           hint="run: inv provision") from None
        return values

    def pending_reboot(self) -> bool:
        """Whether the instance waits for a reboot to apply its parameter group."""
        groups = self.instance().get("DBParameterGroups", [])
        return any(g.get("ParameterApplyStatus") == "pending-reboot" for g in groups)

    def apply(self, plan: Plan[tuning.Parameter]) -> None:
        """Static parameters pending-reboot, dynamic ones immediately, 20 per call."""
        for batch in tuning.batches(tuning.rds_parameters(plan.payloads())):
            self.api.modify_db_parameter_group(DBParameterGroupName=self.group,
                                               Parameters=batch)

    def reboot(self) -> None:
        """Reboot the instance and wait until it is available with its parameters in sync."""
        self.api.reboot_db_instance(DBInstanceIdentifier=self.instance_id)
        state: dict[str, str] = {}

        def ready() -> bool:
            instance = self.instance()
            groups = instance.get("DBParameterGroups", [])
            state["status"] = instance["DBInstanceStatus"]
            return state["status"] == "available" and not any(
                g.get("ParameterApplyStatus") == "pending-reboot" for g in groups)

        console.wait_for(f"{self.instance_id} available after its reboot", ready,
                         timeout=REBOOT_TIMEOUT_S, interval=5,
                         status=lambda: state.get("status", ""))

    def verify(self, wanted: dict[str, str]) -> list[str]:
        """Parameters whose group value still differs from the wanted one."""
        settings = self.settings()
        current = self.current(list(wanted))
        return [n for n, v in wanted.items() if not tuning.same(current[n], v, settings[n])]
