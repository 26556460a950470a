"""The host's instance role, as provision makes it, cannot delete or overwrite a backup.

The role's requests go to an AWS emulator that enforces IAM: a moto server process of its own
(moto's settings are per process, and the session's emulator runs in the test process), where
INITIAL_NO_AUTH_ACTION_COUNT becomes 0 (through /moto-api/reset-auth) once the bucket and the
role are made. They are signed with the role's own credentials from STS AssumeRole, as EC2
gets them for the instance profile: the emulator checks the signature and judges the action
and resource of each request against the role's policies. The conditions it leaves out are
judged in front of it by tests.aws.iam_evaluation, from the policy document provision wrote.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ops import config
from ops.aws import identity, storage
from ops.aws.context import Ctx
from ops.db import dumps
from ops.host import backup_job
from ops.lab.emulator import Emulator
from ops.lab.state import LabState
from tests.aws.conftest import ENV_YML
from tests.aws.iam_evaluation import allowed, gate
from tests.aws.provisioning import REGION

KEPT = "dump-20261128T020000Z"  # a backup the host wrote yesterday
KEPT_KEYS = [f"dumps/{KEPT}/manifest.json", dumps.data_key(KEPT, "toc.dat"),
             "runs/dump/20261128T020000Z.json"]


@dataclass(frozen=True)
class Account:
    s3: Any  # the host's, with the role's credentials
    operator: Callable[[str], Any]  # clients with the operator's credentials
    bucket: str
    document: Any  # the role's policy as provision wrote it
    kept: dict[str, str]  # the version of each of KEPT_KEYS
    url: str  # the emulator's
    credentials: dict[str, str]  # the role's, as the instance metadata service serves them


def _client(url: str, keys: dict[str, str], service: str) -> Any:
    return boto3.Session(region_name=REGION, **keys).client(service, endpoint_url=url)


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Account]:
    """The bucket and the host's role made by provision's own code, a backup in the bucket,
    then IAM enforced."""
    emulator = Emulator(LabState(tmp_path_factory.mktemp("iam"), "iam-enforcing"))
    url = emulator.start("127.0.0.1")
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            root = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
            for key, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing",
                               "AWS_SECRET_ACCESS_KEY": "testing"}.items():
                monkeypatch.setenv(key, value)
            monkeypatch.delenv("AWS_PROFILE", raising=False)
            path = tmp_path_factory.mktemp("env") / "awstest.yml"
            path.write_text(ENV_YML)
            env = config.load(path=path)
            ctx = Ctx(env)
            for area in (storage, identity):
                for change in area.plan(ctx):
                    # The TLS-only statement stays out: the emulator speaks plain HTTP, and
                    # it takes the statement's condition as met, denying every request.
                    if change.payload is not storage.Op.POLICY:
                        area.apply(ctx, change.payload)
            iam, s3 = _client(url, root, "iam"), _client(url, root, "s3")
            kept = {key: s3.put_object(Bucket=env.bucket, Key=key,
                                       Body=b"written once")["VersionId"] for key in KEPT_KEYS}
            iam.create_user(UserName="operator")
            iam.put_user_policy(UserName="operator", PolicyName="all", PolicyDocument=json.dumps(
                {"Version": "2012-10-17",
                 "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
            operator = iam.create_access_key(UserName="operator")["AccessKey"]
            role = identity.name(env)
            # The one policy the gate judges by is the role's only one.
            assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
            assert iam.list_role_policies(RoleName=role)["PolicyNames"] == [identity.POLICY]
            document = iam.get_role_policy(RoleName=role,
                                           PolicyName=identity.POLICY)["PolicyDocument"]
            credentials = _client(url, root, "sts").assume_role(
                RoleArn=iam.get_role(RoleName=role)["Role"]["Arn"],
                RoleSessionName="i-0123456789abcdef0")["Credentials"]
            _enforce(url)
        host = _client(url, {"aws_access_key_id": credentials["AccessKeyId"],
                             "aws_secret_access_key": credentials["SecretAccessKey"],
                             "aws_session_token": credentials["SessionToken"]}, "s3")
        gate(host, document)
        keys = {"aws_access_key_id": operator["AccessKeyId"],
                "aws_secret_access_key": operator["SecretAccessKey"]}
        yield Account(host, lambda service: _client(url, keys, service), env.bucket, document,
                      kept, url, credentials)
    finally:
        emulator.stop()


def _enforce(url: str) -> None:
    """From now on the emulator authenticates and authorizes every request."""
    request = urllib.request.Request(f"{url}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).close()


def _denied(call: Callable[[], Any]) -> None:
    with pytest.raises(ClientError) as refused:
        call()
    assert refused.value.response["Error"]["Code"] == "AccessDenied", refused.value


def _versions(account: Account) -> list[tuple[str, str, bool]]:
    """Every version and delete marker of the bucket: (key, version, is a delete marker)."""
    found = account.operator("s3").list_object_versions(Bucket=account.bucket)
    return sorted([(v["Key"], v["VersionId"], False) for v in found.get("Versions", [])]
                  + [(m["Key"], m["VersionId"], True) for m in found.get("DeleteMarkers", [])])


def test_host_adds_backups_but_replaces_none(account: Account) -> None:
    s3, bucket = account.s3, account.bucket
    before = _versions(account)
    new = "dump-20261129T020000Z"
    for key in (dumps.data_key(new, "toc.dat"), f"dumps/{new}/manifest.json",
                "runs/dump/20261129T020000Z.json"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"new", IfNoneMatch="*")
    # The same key again: S3 refuses to replace it, and says so.
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key=f"dumps/{new}/manifest.json", Body=b"x",
                      IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    for key in KEPT_KEYS:
        _denied(lambda key=key: s3.put_object(Bucket=bucket, Key=key, Body=b"forged"))
    _denied(lambda: s3.put_object(Bucket=bucket, Key=f"dumps/{new}/verification.json",
                                  Body=b"unconditional"))
    _denied(lambda: s3.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"x",
                                  IfNoneMatch="*"))
    # A multipart upload's first request cannot carry the header: one PUT per object.
    _denied(lambda: s3.create_multipart_upload(Bucket=bucket, Key=f"dumps/{new}/data/big"))
    added = sorted(set(_versions(account)) - set(before))
    assert [(key, marker) for key, _, marker in added] == sorted(
        [(dumps.data_key(new, "toc.dat"), False), (f"dumps/{new}/manifest.json", False),
         ("runs/dump/20261129T020000Z.json", False)])
    assert set(before) <= set(_versions(account))
    body = account.operator("s3").get_object(Bucket=bucket, Key=KEPT_KEYS[0])["Body"].read()
    assert body == b"written once"


def test_host_deletes_nothing_and_configures_nothing(account: Account) -> None:
    s3, bucket = account.s3, account.bucket
    before = _versions(account)
    version = account.kept[KEPT_KEYS[0]]
    for key in KEPT_KEYS:
        _denied(lambda key=key: s3.delete_object(Bucket=bucket, Key=key))
    _denied(lambda: s3.delete_object(Bucket=bucket, Key=KEPT_KEYS[0], VersionId=version))
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": KEPT_KEYS[0]}, {"Key": KEPT_KEYS[1], "VersionId": account.kept[KEPT_KEYS[1]]}]})
    assert "Deleted" not in answer
    assert {e["Code"] for e in answer["Errors"]} == {"AccessDenied"}
    _denied(lambda: s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [
            {"ID": "gone", "Status": "Enabled", "Filter": {"Prefix": ""},
             "Expiration": {"Days": 1}, "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]}))
    _denied(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",
                       "Resource": f"arn:aws:s3:::{bucket}/*"}]})))
    _denied(lambda: s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}))
    assert _versions(account) == before
    operator = account.operator("s3")
    assert operator.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    [rule] = operator.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["ID"] == "retention" and "Expiration" not in rule


def test_host_reads_dumps_and_lists_the_bucket(account: Account) -> None:
    s3, bucket = account.s3, account.bucket
    body = s3.get_object(Bucket=bucket, Key=KEPT_KEYS[0])["Body"].read()
    assert body == b"written once"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="dumps/")["Contents"]
    assert KEPT_KEYS[0] in {o["Key"] for o in listed}
    _denied(lambda: s3.get_object(Bucket=bucket, Key=KEPT_KEYS[2]))


def test_host_publishes_metrics_only_in_the_openlmis_namespace(account: Account) -> None:
    # Judged from the document alone: the emulator asks for monitoring:PutMetricData.
    def publish(namespace: str) -> bool:
        return allowed(account.document, "cloudwatch:PutMetricData", "*",
                       {"cloudwatch:namespace": namespace})

    assert publish("OpenLMIS")
    assert not publish("Other")
    assert not allowed(account.document, "cloudwatch:PutMetricAlarm", "*",
                       {"cloudwatch:namespace": "OpenLMIS"})


def test_the_hosts_scheduled_job_signs_as_the_role_and_writes_once(account: Account) -> None:
    """The job's own Signature Version 4 (stdlib, ops/host/backup_job.py), checked by the
    emulator, with the requests the job makes."""
    c = account.credentials
    job = backup_job.Aws({"s3": f"{account.url}/{account.bucket}", "bucket": account.bucket,
                          "region": REGION},
                         backup_job.Credentials(c["AccessKeyId"], c["SecretAccessKey"],
                                                c["SessionToken"]))
    job.put_json("runs/drill/20261129T040000Z.json", b'{"ok": true}')
    with pytest.raises(backup_job.Exists):
        job.put_json("runs/drill/20261129T040000Z.json", b'{"ok": false}')
    with pytest.raises(backup_job.Exists):
        job.put_json(KEPT_KEYS[0], b"replaced")
    assert KEPT_KEYS[0] in job.keys("dumps/")
    assert job.get(KEPT_KEYS[0]) == b"written once"
    with pytest.raises(backup_job.JobError, match="403"):
        job.get(KEPT_KEYS[2])  # run records are the operator's to read
    forged = backup_job.Aws(job.config, backup_job.Credentials(c["AccessKeyId"], "wrong",
                                                                c["SessionToken"]))
    with pytest.raises(backup_job.JobError, match="403"):
        forged.put_json("runs/drill/20261129T050000Z.json", b"{}")
