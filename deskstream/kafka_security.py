"""The one place that turns `deskstream.settings.KafkaSecurity` into what the Kafka
clients take: aiokafka's keyword arguments and Faust's `broker_credentials`.

Kept out of settings.py so that reading settings imports neither aiokafka nor Faust.
The TLS context is built anew for each client rather than once at start: a
certificate renewed in its mounted Secret is then picked up by the next client made
(a worker restarted, a partition taken), with no restart of the whole process.

Importing this module (every client's options come from here) also keeps the SASL
exchange out of aiokafka's DEBUG log, which would otherwise print a PLAIN password
verbatim with LOG_LEVEL=debug.
"""
from __future__ import annotations

import logging
import ssl
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context
from faust.types.auth import CredentialsT

from deskstream.settings import KafkaSecurity


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    """The client's TLS context (CA bundle or the system's CAs, client certificate for
    mutual TLS, hostname check), or None when the protocol has no TLS."""
    if not security.uses_ssl:
        return None
    context = create_ssl_context(
        cafile=security.ssl_cafile,
        certfile=security.ssl_certfile,
        keyfile=security.ssl_keyfile,
    )
    # The certificate is still verified against the CAs without the hostname check:
    # only for brokers whose certificates do not name the address clients use.
    context.check_hostname = security.ssl_check_hostname
    return context


def client_options(security: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient.

    aiokafka takes the SCRAM credentials in `sasl_plain_username` and
    `sasl_plain_password` too, whatever the mechanism."""
    options: dict[str, Any] = {"security_protocol": security.protocol}
    if security.uses_sasl:
        options.update(
            sasl_mechanism=security.sasl_mechanism,
            sasl_plain_username=security.sasl_username,
            sasl_plain_password=security.sasl_password,
        )
    if security.uses_ssl:
        options["ssl_context"] = ssl_context(security)
    return options


def faust_credentials(security: KafkaSecurity) -> CredentialsT | None:
    """Faust's `broker_credentials` for the same settings (None for PLAINTEXT).

    Faust reads the protocol from the credentials' class: SASL over TLS when a
    SASLCredentials has an SSL context, SASL in clear text when it has none."""
    if security.uses_sasl:
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password,
            mechanism=security.sasl_mechanism,
            ssl_context=ssl_context(security),
        )
    if security.uses_ssl:
        return faust.SSLCredentials(ssl_context(security))
    return None


class SaslExchangeFilter(logging.Filter):
    """Redacts the SASL requests and responses aiokafka's connections log at DEBUG
    level ("Request to host:port n: SaslAuthenticateRequest_v1(sasl_auth_bytes=...)"):
    for PLAIN those bytes are the username and the password in clear."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(_is_sasl_exchange(arg) for arg in record.args):
            record.args = tuple(f"{type(arg).__name__}(<redacted>)" if _is_sasl_exchange(arg) else arg for arg in record.args)
        return True


def _is_sasl_exchange(value: object) -> bool:
    return type(value).__name__.startswith("SaslAuthenticate")


def _install_log_filter() -> None:
    """On the logger itself, so that it holds whatever handlers a service configures
    (a logger's filters run only once its level lets a record through: free at INFO)."""
    logger = logging.getLogger("aiokafka.conn")
    if not any(isinstance(existing, SaslExchangeFilter) for existing in logger.filters):
        logger.addFilter(SaslExchangeFilter())


_install_log_filter()
