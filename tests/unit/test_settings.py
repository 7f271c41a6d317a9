"""Settings come from the environment, once, with clear errors."""
import pytest

from deskstream.settings import KafkaSettings, ServiceSettings, SettingsError, env_float, env_int, env_list
from services.intake.settings import IntakeSettings


def test_defaults_point_at_the_local_kafka():
    kafka = KafkaSettings.from_env({})
    assert kafka.bootstrap == "127.0.0.1:9092"
    assert kafka.faust_broker == "kafka://127.0.0.1:9092"
    assert kafka.partitions == 4


def test_a_cluster_is_a_comma_separated_list():
    kafka = KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "a:9092, b:9092"})
    assert kafka.bootstrap == "a:9092,b:9092"
    assert kafka.faust_broker == "kafka://a:9092;b:9092"


def test_numbers_are_checked():
    assert env_int({"X": " 7 "}, "X", 1) == 7
    assert env_float({}, "X", 1.5) == 1.5
    with pytest.raises(SettingsError, match="X must be an integer"):
        env_int({"X": "seven"}, "X", 1)
    with pytest.raises(SettingsError, match="X must be a number"):
        env_float({"X": "fast"}, "X", 1.0)
    assert env_list({"X": "a,,b "}, "X") == ("a", "b")


def test_each_service_has_its_own_port_and_folder():
    settings = ServiceSettings.from_env("router", 8081, {"ROUTER_HTTP_PORT": "9001", "DESKSTREAM_DATA_DIR": "/tmp/d"})
    assert (settings.http_port, str(settings.data_dir)) == (9001, "/tmp/d/router")


def test_intake_refuses_to_start_without_a_real_session_secret():
    with pytest.raises(SettingsError, match="CHAT_SESSION_SECRET"):
        IntakeSettings.from_env({"CHAT_SESSION_SECRET": "short"})
    assert IntakeSettings.from_env({"CHAT_SESSION_SECRET": "s" * 32}).chat_session_secret == b"s" * 32


SECRET = {"CHAT_SESSION_SECRET": "s" * 40}


def test_the_sms_webhook_is_off_without_a_token_and_needs_the_url_twilio_signs():
    assert IntakeSettings.from_env(SECRET).twilio is None
    with pytest.raises(SettingsError, match="PUBLIC_BASE_URL"):
        IntakeSettings.from_env({**SECRET, "TWILIO_AUTH_TOKEN": "t"})
    twilio = IntakeSettings.from_env({**SECRET, "TWILIO_AUTH_TOKEN": "t", "PUBLIC_BASE_URL": "https://support.example.com/"}).twilio
    assert twilio is not None and twilio.public_base_url == "https://support.example.com"


def test_sending_sms_needs_a_token_a_sender_and_a_callback_url():
    from services.notifier.settings import NotifierSettings

    assert NotifierSettings.from_env({}).twilio is None
    account = {"TWILIO_ACCOUNT_SID": "AC1"}
    with pytest.raises(SettingsError, match="TWILIO_AUTH_TOKEN"):
        NotifierSettings.from_env(account)
    with pytest.raises(SettingsError, match="TWILIO_SMS_FROM or TWILIO_MESSAGING_SERVICE_SID"):
        NotifierSettings.from_env({**account, "TWILIO_AUTH_TOKEN": "t"})
    with pytest.raises(SettingsError, match="PUBLIC_BASE_URL"):
        NotifierSettings.from_env({**account, "TWILIO_AUTH_TOKEN": "t", "TWILIO_SMS_FROM": "+34910000000"})
    twilio = NotifierSettings.from_env({**account, "TWILIO_AUTH_TOKEN": "t", "TWILIO_SMS_FROM": "+34910000000",
                                        "PUBLIC_BASE_URL": "https://support.example.com"}).twilio
    assert twilio is not None
    assert (twilio.whatsapp_from, twilio.public_base_url, twilio.max_segments) == ("+34910000000", "https://support.example.com", 3)



def test_the_console_makes_its_own_session_secret_when_none_is_set_and_refuses_a_short_one():
    from services.router.settings import ConsoleSettings

    generated = ConsoleSettings.from_env({})
    assert generated.session_secret_generated and len(generated.session_secret) >= 32
    assert ConsoleSettings.from_env({"ROUTER_SESSION_SECRET": "k" * 32}).session_secret == "k" * 32
    with pytest.raises(SettingsError, match="ROUTER_SESSION_SECRET must be at least 32"):
        ConsoleSettings.from_env({"ROUTER_SESSION_SECRET": "short"})


def test_the_notifier_s_outbox_settings_have_safe_defaults_and_refuse_what_cannot_work():
    from services.notifier.settings import NotifierSettings

    settings = NotifierSettings.from_env({})
    assert settings.rates == {"sms": 10.0, "whatsapp": 20.0, "email": 50.0}
    assert settings.quiet_hours is not None and settings.quiet_hours.overrides == frozenset({"P1", "reply"})
    assert settings.ops_tokens == frozenset() and settings.retry.max_attempts == 4
    assert NotifierSettings.from_env({"NOTIFIER_QUIET_HOURS": "off"}).quiet_hours is None
    assert NotifierSettings.from_env({"NOTIFIER_RATES": "off"}).rates == {}
    assert NotifierSettings.from_env({"NOTIFIER_RATES": "sms=2"}).rates == {"sms": 2.0}
    for bad in ({"NOTIFIER_QUIET_HOURS": "late-early"}, {"NOTIFIER_RATES": "sms=-1"}, {"NOTIFIER_OPS_TOKEN": "short"},
                {"NOTIFIER_DEFAULT_TIMEZONE": "Mars/Olympus"}):
        with pytest.raises(SettingsError):
            NotifierSettings.from_env(bad)
