"""destroy's listing and guards, the tier tag's drift, the AWS lock's holder: pure parts."""

from __future__ import annotations

from ops.aws import lock, tags, teardown, tier
from ops.aws.context import DnsRecord
from tests.unit.test_aws_plan import environment

VPC = "arn:aws:ec2:eu-west-1:1:vpc/vpc-1"
DB = "arn:aws:rds:eu-west-1:1:db:openlmis-production-db"
SNAPSHOT = "arn:aws:rds:eu-west-1:1:snapshot:openlmis-production-db-final-20260101-000000"
LB = "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/openlmis-production-lb/ab"
IDS = {"vpc": "vpc-1", "db": "openlmis-production-db", "lb": LB, "account": "1"}


def mapping(arn: str, **values: str) -> dict[str, object]:
    return {"ResourceARN": arn, "Tags": [{"Key": k, "Value": v} for k, v in values.items()]}


def test_every_resource_carries_its_environments_tier() -> None:
    assert tags.tags(environment(database__tier="uat"), "vpc")[tags.TIER] == "uat"


def test_live_resources_whose_tier_tag_differs_are_retagged_snapshots_are_not() -> None:
    env = environment(database__tier="production")
    found = [mapping(VPC, **{tags.TIER: "dev"}), mapping(DB), mapping(LB, **{tags.TIER:
                                                                             "production"}),
             mapping(SNAPSHOT, **{tags.TIER: "dev"})]
    changes = tier.diff(env, found, IDS)
    assert [c.line() for c in changes] == [
        "~ vpc/vpc-1: tag openlmis:tier=production (was dev)",
        "~ db:openlmis-production-db: tag openlmis:tier=production (was untagged)"]
    assert [c.payload for c in changes] == [tier.Retag(VPC), tier.Retag(DB)]
    assert tier.production(found, IDS) == ["loadbalancer/app/openlmis-production-lb/ab"]
    assert tier.production(found, {}) == []  # nothing live: the final snapshot does not count


def test_a_live_production_tag_is_refused_without_force_whatever_the_file_says() -> None:
    env = environment(database__tier="dev")
    many = teardown.Survey(IDS, production=[f"vpc/vpc-{n}" for n in range(5)])
    refused = teardown.refusal(environment(), many, force=False, remove_protection=False)
    assert refused is not None and "vpc/vpc-2 and 2 more;" in refused.message
    survey = teardown.Survey(IDS, production=["db:openlmis-production-db"],
                             protected=["database openlmis-production-db"])
    refused = teardown.refusal(env, survey, force=False, remove_protection=True)
    assert refused is not None and refused.message == (
        "example is production-tier on AWS, whatever its file says (dev): "
        "openlmis:tier=production on db:openlmis-production-db; destroy refuses it")
    protected = teardown.refusal(env, survey, force=True, remove_protection=False)
    assert protected is not None and "database openlmis-production-db" in protected.message
    assert "--remove-protection" in protected.hint
    assert teardown.refusal(env, survey, force=True, remove_protection=True) is None


def test_the_listing_names_what_goes_and_what_stays_and_why() -> None:
    env = environment()
    other = environment(aws__region="eu-west-1")
    elsewhere = environment(aws__region="af-south-1")
    assert teardown.sharing(env, [other.model_copy(update={"name": "training"}),
                                  elsewhere.model_copy(update={"name": "far"})]) == ["training"]
    survey = teardown.Survey({**IDS, "bucket": env.bucket, "cert": "arn:aws:acm:x:1:certificate/c"},
                             records=["openlmis.example.org."],
                             mail_identity="example.org", shared_with=["training"],
                             backups_kept=True)
    shown = teardown.listing(env, survey)
    assert shown.remove == ["dns records openlmis.example.org.",
                            "load balancer loadbalancer/app/openlmis-production-lb/ab",
                            "database openlmis-production-db (after a final snapshot, which is "
                            "kept)", "certificate certificate/c", "vpc vpc-1"]
    assert shown.keep == [
        "ses identity example.org and its DNS records: also the mail of training "
        "(config/NAME.yml)",
        f"bucket {env.bucket}: it holds backups (delete it yourself if you mean to)",
        "the final database snapshot, and earlier snapshots"]
    alone = teardown.listing(env, teardown.Survey({"bucket": env.bucket},
                                                  mail_identity="example.org"))
    assert alone == teardown.Listing(["ses identity example.org", f"bucket {env.bucket} (empty)"],
                                     [])
    assert teardown.mail_record(DnsRecord("a1._domainkey.example.org", "CNAME", "x", ""),
                                "example.org")
    assert not teardown.mail_record(DnsRecord("example.org", "A", "lb", ""), "example.org")


def test_the_lock_holder_says_who_and_how_long_and_whether_it_can_be_known_stale() -> None:
    holder = lock.Holder("ann@ops-1", "ops-1", 4242, "provision", "2026-01-01T10:00:00Z")
    now = 1767261600 + 125  # 2026-01-01T10:02:05Z
    assert holder.describe(now) == ("ann@ops-1 (provision, process 4242 on ops-1) since "
                                    "2026-01-01T10:00:00Z, 2m 05s ago")
    assert lock.age(holder.since, now + 7200) == "2h 02m"
    assert lock.parse('{"who": "x"}') is None and lock.parse("not json") is None
    assert lock.stale(holder, "ops-1", alive=False) is True
    assert lock.stale(holder, "ops-1", alive=True) is False
    assert lock.stale(holder, "laptop", alive=False) is None  # its process is not ours to see
