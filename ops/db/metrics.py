"""The toolkit's CloudWatch metrics (namespace OpenLMIS, dimension Environment): what the
alarms watch. The host's scheduled job publishes them itself (ops/host/backup_job.py); this
module is the operator's side."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from ops import console
from ops.aws.alarms import NAMESPACE
from ops.aws.session import client
from ops.config import Environment


def backup_succeeded(env: Environment) -> None:
    """BackupSucceeded 1: a dump landed complete. A refusal is a warning: the dump stands."""
    try:
        client(env, "cloudwatch").put_metric_data(Namespace=NAMESPACE, MetricData=[{
            "MetricName": "BackupSucceeded", "Value": 1.0, "Unit": "Count",
            "Dimensions": [{"Name": "Environment", "Value": env.name}]}])
    except (BotoCoreError, ClientError) as exc:
        console.warn(f"the dump stands, but BackupSucceeded was not published ({exc}): the "
                     "backup-age alarm may fire")
