"""AWS failures an operator meets, each as one message with what to do (see ops.errors'
exit codes): credentials missing or expired (SSO sessions included), throttling that outlasted
the retries, an API that cannot be reached or does not answer in time. Pure: the tasks' guard
turns any such exception into the OpsError made here."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)

from ops.errors import AWS_LOGIN, FAILED, TRANSIENT, OpsError

# Error codes AWS answers when a token or signature has expired.
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired",
                           "TokenRefreshRequired", "InvalidClientTokenId",
                           "UnrecognizedClientException"})
# What botocore raises, as a bare RuntimeError, when refreshed credentials (a
# credential_process, a container or instance role) are still expired (botocore.credentials).
STILL_EXPIRED = "refreshed credentials are still expired"
# Error codes of throttling, as botocore's standard retry mode counts them.
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException"})


def login_hint(profile: str | None) -> str:
    """How to get fresh credentials for `profile` (SSO, the usual case for operators)."""
    where = f" --profile {profile}" if profile else ""
    return (f"log in again: aws sso login{where} (or refresh the credentials of the AWS "
            "credential chain), then run the same command again")


def explain(exc: BaseException, profile: str | None) -> OpsError | None:
    """The operator's message for an AWS failure; None if `exc` is not one."""
    if isinstance(exc, (TokenRetrievalError, SSOError)):
        return OpsError(f"the AWS SSO session has expired or cannot be read ({exc})",
                        hint=login_hint(profile), code=AWS_LOGIN)
    if isinstance(exc, (NoCredentialsError, CredentialRetrievalError)):
        return OpsError(f"no usable AWS credentials: {exc}",
                        hint="configure the AWS credential chain (aws configure sso, "
                        "AWS_PROFILE or an instance role); " + login_hint(profile),
                        code=AWS_LOGIN)
    if isinstance(exc, ProfileNotFound):
        return OpsError(f"no usable AWS credentials: {exc}",
                        hint="set aws.profile (or AWS_PROFILE) to a profile of ~/.aws/config")
    if isinstance(exc, NoRegionError):
        return OpsError("no AWS region", hint="set aws.region in the environment's file")
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)):
        return OpsError(f"the AWS API did not answer in time: {exc}",
                        hint="check the network (a proxy, a VPN), then run the same command "
                        "again: it converges from where it stopped", code=TRANSIENT)
    if isinstance(exc, EndpointConnectionError):
        return OpsError(f"cannot reach the AWS API: {exc}",
                        hint="check the region name and the network; for the lab, run: "
                        "inv lab.up", code=TRANSIENT)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, operation = error.get("Code", ""), exc.operation_name
        if code in EXPIRED_CODES:
            return OpsError(f"AWS refused {operation}: the credentials have expired or are "
                            f"not valid ({code})", hint=login_hint(profile), code=AWS_LOGIN)
        if code in THROTTLING_CODES:
            attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
            return OpsError(f"AWS is throttling {operation} ({code}), still after "
                            f"{attempts} retries",
                            hint="another tool may be calling the same API heavily; wait a "
                            "minute, then run the same command again", code=TRANSIENT)
        return OpsError(f"AWS refused a call: {exc}", code=FAILED)
    if isinstance(exc, BotoCoreError):
        return OpsError(f"an AWS call failed: {exc}", code=FAILED)
    if isinstance(exc, RuntimeError) and STILL_EXPIRED in str(exc):
        return OpsError("the AWS credentials have expired, and refreshing them gave expired "
                        "ones again", hint=login_hint(profile), code=AWS_LOGIN)
    return None
