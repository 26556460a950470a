"""The aws tier reaches a real emulator over HTTP through the toolkit's own clients."""

from __future__ import annotations

import json

import pytest

from ops import secrets
from ops.aws import compute
from ops.aws.context import Ctx
from ops.aws.session import client
from ops.config import Environment
from ops.errors import OpsError


def test_client_follows_the_standard_endpoint_variable(aws_env: Environment, emulator: str) -> None:
    ec2 = client(aws_env, "ec2")
    assert ec2.meta.endpoint_url == emulator
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    assert [v["VpcId"] for v in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]] == [vpc]
    ec2.delete_vpc(VpcId=vpc)


def test_secrets_resolve_from_ssm_and_secrets_manager(aws_env: Environment) -> None:
    client(aws_env, "ssm").put_parameter(Name="/openlmis/test/db", Value="from-ssm-123",
                                         Type="SecureString", Overwrite=True)
    client(aws_env, "secretsmanager").create_secret(  # as provision keeps SES credentials
        Name="openlmis-awstest/smtp",
        SecretString=json.dumps({"username": "AKIATEST", "password": "from-sm-456"}))
    assert secrets.resolve_all(aws_env) == {"database.master_password": "from-ssm-123",
                                            "mail.smtp_username": "AKIATEST",
                                            "mail.smtp_password": "from-sm-456"}


def test_missing_ssm_secret_names_key_and_fix(aws_env: Environment) -> None:
    with pytest.raises(OpsError) as caught:
        secrets.resolve(aws_env, "stack.secrets.ADMIN", "ssm:/openlmis/test/missing")
    assert "stack.secrets.ADMIN (ssm:/openlmis/test/missing) is not set" in str(caught.value)
    assert "aws ssm put-parameter" in caught.value.hint


def test_provision_sizes_the_host_by_the_model_and_asks_aws_about_other_types(
        aws_env: Environment) -> None:
    def warnings(instance_type: str) -> list[str]:
        ctx = Ctx(aws_env.model_copy(update={"host": aws_env.host.model_copy(
            update={"instance_type": instance_type})}))
        compute.check(ctx)
        return ctx.warnings

    assert warnings(aws_env.host.instance_type) == []  # the default holds the default stack
    [small] = warnings("m6i.large")
    assert "= 13.5 GiB, more than m6i.large offers (8 GiB)" in small
    assert warnings("m6g.xlarge") == []  # not in the table: AWS says 16 GiB
    assert "more than m6g.large offers (8 GiB)" in warnings("m6g.large")[0]
    with pytest.raises(OpsError, match=r"x9\.huge' is not offered"):
        warnings("x9.huge")
