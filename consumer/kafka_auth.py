"""How the Kafka clients log in: SASL (PLAIN/SCRAM), OAUTHBEARER with OIDC or AWS MSK IAM, mutual TLS.

Managed clusters each want their own mode: Confluent Cloud takes an API key (PLAIN) or OIDC,
MSK takes IAM, Strimzi hands out `KafkaUser` client certificates. Every mode becomes librdkafka
settings here, once, for every client (consumer, DLQ producer, admin, tools), so a mode cannot
reach one client and miss another.

- OIDC uses librdkafka's built-in `sasl.oauthbearer.method=oidc`: librdkafka fetches and refreshes
  the token itself (client-credentials grant), so no Python code runs per token.
- MSK IAM has no built-in method: confluent-kafka's `oauth_cb` asks the `aws-msk-iam-sasl-signer`
  package (optional extra `msk`) for a signed token, with credentials from the usual AWS chain
  (IRSA web identity, instance role, AWS_* variables).

`problems()` lists the combinations librdkafka would refuse late or obscurely (or accept and
then fail to log in with), each naming the variable, so start-up stops with exit 2 instead.
Secrets (SASL password, OIDC client secret, key password) are `SecretStr`s read from files in
SECRETS_DIRS; they are unwrapped only into the librdkafka dict.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import ClientSettings

#: The package and extra that MSK IAM needs (heavy: boto3), named in the start-up error.
MSK_SIGNER_MODULE = "aws_msk_iam_sasl_signer"
MSK_EXTRA_HINT = "install the extra: pip install 'clevertap-consumer[msk]' (aws-msk-iam-sasl-signer-python)"

OAUTHBEARER_METHODS = ("oidc", "aws_msk_iam")


def _file_problem(name: str, path: str | None) -> list[str]:
    if path and not os.path.isfile(path):
        return [f"{name}: no such file {path!r} (mount the Secret there)"]
    return []


def problems(s: ClientSettings) -> list[str]:
    """Every bad combination of the authentication settings, each naming its variable."""
    out: list[str] = []
    protocol = s.kafka_security_protocol
    sasl = protocol.startswith("SASL_")
    tls = protocol in ("SSL", "SASL_SSL")
    mechanism = (s.kafka_sasl_mechanism or "").upper()
    if sasl and not mechanism:
        out.append(f"KAFKA_SASL_MECHANISM: KAFKA_SECURITY_PROTOCOL is {protocol}: name a SASL mechanism")
    if mechanism and not sasl:
        out.append(
            f"KAFKA_SASL_MECHANISM is {mechanism} but KAFKA_SECURITY_PROTOCOL is {protocol}: use SASL_SSL or SASL_PLAINTEXT"
        )
    method = s.kafka_sasl_oauthbearer_method
    oidc_fields = {
        "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL": s.kafka_sasl_oauthbearer_token_endpoint_url,
        "KAFKA_SASL_OAUTHBEARER_CLIENT_ID": s.kafka_sasl_oauthbearer_client_id,
        "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET": s.kafka_sasl_oauthbearer_client_secret,
    }
    if mechanism == "OAUTHBEARER" and not method:
        out.append(
            "KAFKA_SASL_OAUTHBEARER_METHOD: KAFKA_SASL_MECHANISM is OAUTHBEARER: choose oidc or aws_msk_iam "
            "(librdkafka's default method is an unsigned test token)"
        )
    if method and mechanism != "OAUTHBEARER":
        out.append(f"KAFKA_SASL_OAUTHBEARER_METHOD is {method}: set KAFKA_SASL_MECHANISM=OAUTHBEARER")
    if method == "oidc":
        out += [
            f"{name}: required with KAFKA_SASL_OAUTHBEARER_METHOD=oidc"
            for name, v in oidc_fields.items()
            if not v
        ]
    else:
        extras = {**oidc_fields, "KAFKA_SASL_OAUTHBEARER_SCOPE": s.kafka_sasl_oauthbearer_scope}
        extras["KAFKA_SASL_OAUTHBEARER_EXTENSIONS"] = s.kafka_sasl_oauthbearer_extensions
        out += [
            f"{name} is set but KAFKA_SASL_OAUTHBEARER_METHOD is not oidc" for name, v in extras.items() if v
        ]
    if method == "aws_msk_iam":
        if not s.kafka_aws_region:
            out.append("KAFKA_AWS_REGION: required with KAFKA_SASL_OAUTHBEARER_METHOD=aws_msk_iam")
        if protocol != "SASL_SSL":
            out.append("KAFKA_SECURITY_PROTOCOL: MSK IAM needs SASL_SSL")
        if importlib.util.find_spec(MSK_SIGNER_MODULE) is None:
            out.append(f"KAFKA_SASL_OAUTHBEARER_METHOD=aws_msk_iam: {MSK_EXTRA_HINT}")
    elif s.kafka_aws_region:
        out.append("KAFKA_AWS_REGION is set but KAFKA_SASL_OAUTHBEARER_METHOD is not aws_msk_iam")
    if method and (s.kafka_sasl_username or s.kafka_sasl_password):
        out.append("KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD: not used with OAUTHBEARER; unset them")
    cert, key = s.kafka_ssl_certificate_location, s.kafka_ssl_key_location
    if bool(cert) != bool(key):
        missing = "KAFKA_SSL_KEY_LOCATION" if cert else "KAFKA_SSL_CERTIFICATE_LOCATION"
        out.append(
            f"{missing}: a client certificate needs both KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION"
        )
    if s.kafka_ssl_key_password is not None and not key:
        out.append("KAFKA_SSL_KEY_PASSWORD is set without KAFKA_SSL_KEY_LOCATION")
    for name, value in (
        ("KAFKA_SSL_CA_LOCATION", s.kafka_ssl_ca_location),
        ("KAFKA_SSL_CERTIFICATE_LOCATION", cert),
        ("KAFKA_SSL_KEY_LOCATION", key),
    ):
        if value and not tls:
            out.append(f"{name} is set but KAFKA_SECURITY_PROTOCOL is {protocol}: use SSL or SASL_SSL")
        out += _file_problem(name, value)
    out += _file_problem("SCHEMA_REGISTRY_SSL_CA_LOCATION", s.schema_registry_ssl_ca_location)
    return out


def msk_iam_token_callback(region: str) -> Callable[[str], tuple[str, float]]:
    """confluent-kafka's `oauth_cb` for MSK IAM: (token, expiry in seconds since the epoch)."""
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    def oauth_cb(_config: str) -> tuple[str, float]:
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return token, expiry_ms / 1000

    return oauth_cb


def librdkafka_auth(s: ClientSettings) -> dict[str, Any]:
    """The login part of every client's librdkafka config (the only place secrets are unwrapped)."""
    conf: dict[str, Any] = {}
    if s.kafka_sasl_mechanism:
        conf["sasl.mechanism"] = s.kafka_sasl_mechanism
    if s.kafka_sasl_username:
        conf["sasl.username"] = s.kafka_sasl_username
    if s.kafka_sasl_password is not None:
        conf["sasl.password"] = s.kafka_sasl_password.get_secret_value()
    if s.kafka_sasl_oauthbearer_method == "oidc":
        conf["sasl.oauthbearer.method"] = "oidc"
        conf["sasl.oauthbearer.token.endpoint.url"] = s.kafka_sasl_oauthbearer_token_endpoint_url
        conf["sasl.oauthbearer.client.id"] = s.kafka_sasl_oauthbearer_client_id
        if s.kafka_sasl_oauthbearer_client_secret is not None:
            conf["sasl.oauthbearer.client.secret"] = s.kafka_sasl_oauthbearer_client_secret.get_secret_value()
        if s.kafka_sasl_oauthbearer_scope:
            conf["sasl.oauthbearer.scope"] = s.kafka_sasl_oauthbearer_scope
        if s.kafka_sasl_oauthbearer_extensions:
            conf["sasl.oauthbearer.extensions"] = s.kafka_sasl_oauthbearer_extensions
    elif s.kafka_sasl_oauthbearer_method == "aws_msk_iam" and s.kafka_aws_region:
        conf["oauth_cb"] = msk_iam_token_callback(s.kafka_aws_region)
    if s.kafka_ssl_ca_location:
        conf["ssl.ca.location"] = s.kafka_ssl_ca_location
    if s.kafka_ssl_certificate_location:
        conf["ssl.certificate.location"] = s.kafka_ssl_certificate_location
    if s.kafka_ssl_key_location:
        conf["ssl.key.location"] = s.kafka_ssl_key_location
    if s.kafka_ssl_key_password is not None:
        conf["ssl.key.password"] = s.kafka_ssl_key_password.get_secret_value()
    return conf
