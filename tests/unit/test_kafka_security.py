"""Kafka security settings: read from the environment, refused when inconsistent, turned
into the same options for every aiokafka client and for Faust, and never showing the
password. TLS contexts are checked with a real handshake on loopback, against a CA
made for the test."""
from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any, Iterator

import faust
import pytest
from faust.types.auth import AuthProtocol, SASLMechanism

from deskstream.kafka_security import client_options, faust_credentials
from deskstream.settings import KafkaSecurity, KafkaSettings, ServiceSettings, SettingsError
from tests.tls_files import Issued, TestCA, make_ca

PASSWORD = "s3cr3t-Pa55word-never-shown"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server_cert(ca: TestCA) -> Issued:
    return ca.issue("broker")


@pytest.fixture(scope="module")
def client_cert(ca: TestCA) -> Issued:
    return ca.issue("client", hosts=(), ips=())


def sasl(protocol: str = "SASL_PLAINTEXT", **extra: str) -> dict[str, str]:
    return {"KAFKA_SECURITY_PROTOCOL": protocol, "KAFKA_SASL_USERNAME": "deskstream", "KAFKA_SASL_PASSWORD": PASSWORD, **extra}


# -- what each protocol gives ----------------------------------------------------------------


def test_plaintext_is_the_default_and_adds_nothing_but_the_protocol():
    settings = KafkaSettings.from_env({})
    assert settings.security == KafkaSecurity()
    assert settings.client_options() == {"security_protocol": "PLAINTEXT"}
    assert settings.security.faust_credentials() is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_passes_the_credentials_whatever_the_mechanism(mechanism):
    security = KafkaSecurity.from_env(sasl(KAFKA_SASL_MECHANISM=mechanism.lower()))
    # aiokafka takes SCRAM credentials in its sasl_plain_* arguments too
    assert security.client_options() == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
        "sasl_plain_username": "deskstream", "sasl_plain_password": PASSWORD,
    }
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.protocol, credentials.mechanism) == (AuthProtocol.SASL_PLAINTEXT, SASLMechanism(mechanism))
    assert (credentials.username, credentials.password, credentials.ssl_context) == ("deskstream", PASSWORD, None)


def test_the_sasl_mechanism_defaults_to_plain():
    assert KafkaSecurity.from_env(sasl()).sasl_mechanism == "PLAIN"


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_adds_a_verifying_tls_context(mechanism, ca):
    security = KafkaSecurity.from_env(sasl("sasl_ssl", KAFKA_SASL_MECHANISM=mechanism, KAFKA_SSL_CAFILE=str(ca.certfile)))
    options = security.client_options()
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": mechanism,
        "sasl_plain_username": "deskstream", "sasl_plain_password": PASSWORD,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.protocol, credentials.mechanism) == (AuthProtocol.SASL_SSL, SASLMechanism(mechanism))
    assert isinstance(credentials.ssl_context, ssl.SSLContext)


def test_ssl_alone_gives_a_tls_context_and_faust_ssl_credentials(ca):
    security = KafkaSecurity.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(ca.certfile)})
    options = security.client_options()
    assert set(options) == {"security_protocol", "ssl_context"} and options["security_protocol"] == "SSL"
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SSLCredentials) and credentials.protocol == AuthProtocol.SSL
    assert isinstance(credentials.context, ssl.SSLContext)


def test_without_a_ca_file_the_system_cas_are_trusted():
    security = KafkaSecurity.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL"})
    assert security.ssl_cafile is None
    context = security.client_options()["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_the_ca_file_is_what_the_context_trusts(ca):
    context = client_options(KafkaSecurity.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(ca.certfile)}))["ssl_context"]
    assert [dict(part[0] for part in c["subject"])["commonName"] for c in context.get_ca_certs()] == ["deskstream-test-ca"]


def test_the_hostname_check_can_be_turned_off_but_not_by_a_typo(ca):
    env = {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(ca.certfile)}
    security = KafkaSecurity.from_env({**env, "KAFKA_SSL_CHECK_HOSTNAME": "false"})
    context = security.client_options()["ssl_context"]
    assert not context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED  # the CA is still checked
    with pytest.raises(SettingsError, match="KAFKA_SSL_CHECK_HOSTNAME must be true or false, got 'ture'"):
        KafkaSecurity.from_env({**env, "KAFKA_SSL_CHECK_HOSTNAME": "ture"})


def test_the_settings_of_every_service_carry_the_security():
    settings = ServiceSettings.from_env("router", 8081, sasl())
    assert settings.kafka.security.protocol == "SASL_PLAINTEXT"
    assert settings.kafka.client_options() == settings.kafka.security.client_options() == client_options(settings.kafka.security)
    assert isinstance(faust_credentials(settings.kafka.security), faust.SASLCredentials)


# -- the password file ----------------------------------------------------------------------


@pytest.mark.parametrize("content", [PASSWORD, PASSWORD + "\n", PASSWORD + "\r\n"])
def test_the_password_may_come_from_a_mounted_file_with_its_newline_stripped(tmp_path, content):
    secret = tmp_path / "password"
    secret.write_text(content, newline="")
    env = sasl(KAFKA_SASL_PASSWORD_FILE=str(secret))
    del env["KAFKA_SASL_PASSWORD"]
    assert KafkaSecurity.from_env(env).sasl_password == PASSWORD


def test_spaces_inside_or_around_a_password_are_part_of_it(tmp_path):
    secret = tmp_path / "password"
    secret.write_text(" two words \n")
    env = sasl(KAFKA_SASL_PASSWORD_FILE=str(secret))
    del env["KAFKA_SASL_PASSWORD"]
    assert KafkaSecurity.from_env(env).sasl_password == " two words "
    assert KafkaSecurity.from_env(sasl(KAFKA_SASL_PASSWORD=" two words ")).sasl_password == " two words "


def test_a_password_file_that_cannot_be_read_or_is_empty_is_refused(tmp_path):
    env = sasl(KAFKA_SASL_PASSWORD_FILE=str(tmp_path / "missing"))
    del env["KAFKA_SASL_PASSWORD"]
    with pytest.raises(SettingsError, match=r"KAFKA_SASL_PASSWORD_FILE .*missing cannot be read: No such file"):
        KafkaSecurity.from_env(env)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SettingsError, match=r"KAFKA_SASL_PASSWORD_FILE .*empty is empty"):
        KafkaSecurity.from_env({**env, "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "empty")})


# -- what is refused ------------------------------------------------------------------------


def refusal(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as raised:
        KafkaSettings.from_env(env)
    return str(raised.value)


def test_an_unknown_protocol_or_mechanism_is_refused():
    assert refusal({"KAFKA_SECURITY_PROTOCOL": "TLS"}) == (
        "KAFKA_SECURITY_PROTOCOL must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, got 'TLS'")
    assert refusal(sasl(KAFKA_SASL_MECHANISM="GSSAPI")) == (
        "KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got 'GSSAPI'")


def test_sasl_needs_a_username_and_a_password():
    assert refusal({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}) == (
        "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE")
    assert refusal({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_PASSWORD": PASSWORD}) == (
        "KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs KAFKA_SASL_USERNAME")
    assert refusal({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "deskstream"}) == (
        "KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE")


def test_a_password_and_a_password_file_together_are_refused(tmp_path):
    (tmp_path / "password").write_text(PASSWORD)
    assert refusal(sasl(KAFKA_SASL_PASSWORD_FILE=str(tmp_path / "password"))) == (
        "set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both")


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_sasl_settings_with_a_protocol_without_sasl_are_refused(protocol):
    env = {"KAFKA_SECURITY_PROTOCOL": protocol, "KAFKA_SASL_USERNAME": "deskstream", "KAFKA_SASL_PASSWORD": PASSWORD}
    assert refusal(env) == f"KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use them"
    assert refusal({"KAFKA_SECURITY_PROTOCOL": protocol, "KAFKA_SASL_MECHANISM": "PLAIN"}) == (
        f"KAFKA_SASL_MECHANISM set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use it")


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_tls_settings_with_a_protocol_without_tls_are_refused(protocol, ca):
    env = {"KAFKA_SSL_CAFILE": str(ca.certfile), "KAFKA_SSL_CHECK_HOSTNAME": "false"}
    env |= sasl(protocol) if protocol.startswith("SASL") else {"KAFKA_SECURITY_PROTOCOL": protocol}
    assert refusal(env) == f"KAFKA_SSL_CAFILE, KAFKA_SSL_CHECK_HOSTNAME set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use them"


def test_a_client_certificate_needs_its_key_and_the_key_its_certificate(client_cert):
    ssl_env = {"KAFKA_SECURITY_PROTOCOL": "SSL"}
    message = "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together (a client certificate and its key)"
    assert refusal({**ssl_env, "KAFKA_SSL_CERTFILE": str(client_cert.certfile)}) == message
    assert refusal({**ssl_env, "KAFKA_SSL_KEYFILE": str(client_cert.keyfile)}) == message


def test_tls_files_that_are_not_there_are_refused_at_start(tmp_path):
    assert refusal({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(tmp_path / "ca.pem")}) == (
        f"KAFKA_SSL_CAFILE {tmp_path / 'ca.pem'} is not a file")


# -- the password stays hidden --------------------------------------------------------------


def test_the_password_is_in_no_repr_str_or_error(tmp_path, ca):
    env = sasl("SASL_SSL", KAFKA_SSL_CAFILE=str(ca.certfile))
    service = ServiceSettings.from_env("intake", 8080, env)
    for shown in (service, service.kafka, service.kafka.security, service.kafka.security.faust_credentials()):
        assert PASSWORD not in repr(shown) and PASSWORD not in str(shown)
    assert "deskstream" in repr(service.kafka.security)  # the username is fine to show
    (tmp_path / "password").write_text(PASSWORD)
    refused: list[dict[str, Any]] = [
        {**env, "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
        {**env, "KAFKA_SECURITY_PROTOCOL": "SSL"},
        {**env, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
        {**env, "KAFKA_SASL_MECHANISM": "OAUTHBEARER"},
        {**env, "KAFKA_SASL_USERNAME": ""},
        {**env, "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "password")},
        {**env, "KAFKA_SECURITY_PROTOCOL": PASSWORD[:3]},
    ]
    for wrong in refused:
        message = refusal(wrong)
        assert PASSWORD not in message, message


def test_aiokafkas_debug_log_of_the_sasl_exchange_is_redacted(caplog):
    from aiokafka.protocol.admin import SaslAuthenticateRequest_v1, SaslHandShakeRequest_v1

    KafkaSecurity.from_env(sasl()).client_options()  # what every client does before it connects
    with caplog.at_level(logging.DEBUG, logger="aiokafka.conn"):
        logger = logging.getLogger("aiokafka.conn")
        logger.debug("Request to %s:%d %d: %s", "127.0.0.1", 9092, 2, SaslHandShakeRequest_v1(mechanism="PLAIN"))
        logger.debug("Request to %s:%d %d: %s", "127.0.0.1", 9092, 3,
                     SaslAuthenticateRequest_v1(sasl_auth_bytes=f"deskstream\0deskstream\0{PASSWORD}".encode()))
    assert [record.getMessage() for record in caplog.records] == [
        "Request to 127.0.0.1:9092 2: SaslHandShakeRequest_v1(mechanism='PLAIN')",
        "Request to 127.0.0.1:9092 3: SaslAuthenticateRequest_v1(<redacted>)",
    ]


# -- the contexts against a real TLS server ------------------------------------------------------


@pytest.fixture
def tls_server(server_cert: Issued, ca: TestCA) -> Iterator[Any]:
    """A factory of loopback TLS servers presenting `server_cert` (or another
    certificate), optionally asking for a client certificate from `ca` (mutual TLS, as
    a broker with ssl.client.auth=required)."""
    servers: list[asyncio.AbstractServer] = []

    async def start(require_client_cert: bool = False, cert: Issued = server_cert) -> int:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert.certfile, cert.keyfile)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(ca.certfile)

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"ok")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()


async def handshake(security: KafkaSecurity, host: str, port: int) -> bytes:
    """What the server says over TLS set up with `security`'s context (b"ok")."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=client_options(security)["ssl_context"]), 5)
    try:
        return await asyncio.wait_for(reader.read(2), 5)
    finally:
        writer.close()


async def refused(security: KafkaSecurity, port: int) -> bool:
    """Whether the server turned the client away: with TLS 1.3 the client's handshake
    completes before the server has judged its certificate, so the refusal shows as an
    alert or a closed connection at the first read."""
    try:
        return await handshake(security, "127.0.0.1", port) != b"ok"
    except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError):
        return True


async def test_the_context_trusts_the_ca_and_checks_the_name(tls_server, ca):
    port = await tls_server()
    trusting = KafkaSecurity.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(ca.certfile)})
    assert await handshake(trusting, "127.0.0.1", port) == b"ok"
    assert await handshake(trusting, "localhost", port) == b"ok"
    other_ca = make_ca(ca.folder / "other", "someone-else")
    stranger = KafkaSecurity.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(other_ca.certfile)})
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        await handshake(stranger, "127.0.0.1", port)


async def test_a_name_the_certificate_does_not_carry_fails_unless_the_check_is_off(tls_server, ca):
    port = await tls_server(cert=ca.issue("elsewhere", hosts=("kafka.example.com",), ips=()))
    env = {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(ca.certfile)}
    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
        await handshake(KafkaSecurity.from_env(env), "127.0.0.1", port)
    unchecked = KafkaSecurity.from_env({**env, "KAFKA_SSL_CHECK_HOSTNAME": "false"})
    assert await handshake(unchecked, "127.0.0.1", port) == b"ok"


async def test_the_client_certificate_is_presented_for_mutual_tls(tls_server, ca, client_cert):
    port = await tls_server(require_client_cert=True)
    env = {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(ca.certfile)}
    with_cert = KafkaSecurity.from_env({**env, "KAFKA_SSL_CERTFILE": str(client_cert.certfile),
                                        "KAFKA_SSL_KEYFILE": str(client_cert.keyfile)})
    assert with_cert.ssl_certfile == Path(client_cert.certfile)
    assert await handshake(with_cert, "127.0.0.1", port) == b"ok"
    assert await refused(KafkaSecurity.from_env(env), port)
