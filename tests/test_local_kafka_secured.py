"""The local launcher's secured mode against raw aiokafka: SASL_SSL with SCRAM-SHA-512 and PLAIN
over the launcher's own CA, and what aiokafka does when the password, the CA or the protocol is wrong.

aiokafka reports every refusal below the same way: ``start()`` raises a bare
``KafkaConnectionError("Unable to bootstrap from [...]")`` (no ``__cause__``), and the real reason
is only in an ERROR record ``Unable connect to "host:port": <exc>`` whose last argument is the
exception. The worker needs that record to say one clear line; the tests pin both.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
from aiokafka.helpers import create_ssl_context

from deploy.local_kafka import KafkaLaunchError, LocalKafka, free_port

# One secured broker for the module, plus one more for the folder formatted without SCRAM.
pytestmark = [pytest.mark.anyio, pytest.mark.slow(45)]

# Every refusal observed came within half a second (SCRAM and PLAIN ~0.35 s: the broker's
# connection.failed.authentication.delay.ms of 100 ms plus the handshakes; TLS and plaintext ~0.02 s).
REFUSAL_BOUND = 10.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    kafka = LocalKafka(data_dir=tmp_path_factory.mktemp("kafka-secured"), port=free_port(),
                       controller_port=free_port(), secure_port=free_port(), secured=True)
    kafka.up()
    try:
        yield kafka
    finally:
        kafka.down()


def _options(broker: LocalKafka, mechanism: str = "SCRAM-SHA-512", *, password: str | None = None,
             cafile: Path | None = None, bootstrap: str | None = None) -> dict[str, Any]:
    return {
        "bootstrap_servers": bootstrap or broker.secure_bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": broker.sasl_username,
        "sasl_plain_password": broker.sasl_password if password is None else password,
        "ssl_context": create_ssl_context(cafile=str(cafile or broker.ca_file)),
        "request_timeout_ms": 10_000,
    }


async def _round_trip(options: dict[str, Any], topic: str) -> bytes | None:
    """Create ``topic``, produce one record and consume it back, every client with ``options``."""
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**options)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"over SASL_SSL")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **options)
    await consumer.start()
    try:
        with anyio.fail_after(20):
            record = await consumer.getone()
    finally:
        await consumer.stop()
    return record.value


async def _refusal(options: dict[str, Any], caplog: pytest.LogCaptureFixture) -> tuple[BaseException, float]:
    """Start a producer that must be refused: the exception aiokafka logged as the reason, and how long."""
    caplog.set_level(logging.ERROR, logger="aiokafka")
    caplog.clear()
    producer = AIOKafkaProducer(**options)
    started = time.monotonic()
    try:
        with anyio.fail_after(REFUSAL_BOUND), pytest.raises(KafkaConnectionError, match="Unable to bootstrap from"):
            await producer.start()
    finally:
        await producer.stop()
    elapsed = time.monotonic() - started
    reasons = [r.args[-1] for r in caplog.records
               if r.getMessage().startswith("Unable connect to") and isinstance(r.args, tuple) and r.args]
    assert reasons, [r.getMessage() for r in caplog.records]
    reason = reasons[0]
    assert isinstance(reason, BaseException)
    return reason, elapsed


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
async def test_a_record_goes_through_the_sasl_ssl_listener(broker: LocalKafka, mechanism: str, unique: str) -> None:
    assert await _round_trip(_options(broker, mechanism), f"secured-{mechanism.lower()}-{unique}") == b"over SASL_SSL"


async def test_the_certificate_names_localhost_too(broker: LocalKafka) -> None:
    # Bootstrap by name checks the DNS SAN; the advertised 127.0.0.1 that follows checks the IP SAN.
    admin = AIOKafkaAdminClient(**_options(broker, bootstrap=f"localhost:{broker.secure_port}"))
    await admin.start()
    try:
        assert isinstance(await admin.list_topics(), list)
    finally:
        await admin.close()


async def test_a_wrong_scram_password_is_refused(broker: LocalKafka, caplog: pytest.LogCaptureFixture) -> None:
    # Observed: KafkaConnectionError("Unable to bootstrap from [...]") after ~0.35 s, and logged
    # 'Unable connect to "127.0.0.1:<port>": [Error 58] SaslAuthenticationFailed: Authentication
    # failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512'.
    reason, elapsed = await _refusal(_options(broker, password="not-the-password"), caplog)
    assert isinstance(reason, SaslAuthenticationFailed)
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in str(reason)
    assert elapsed < REFUSAL_BOUND


async def test_a_wrong_plain_password_is_refused(broker: LocalKafka, caplog: pytest.LogCaptureFixture) -> None:
    # Observed: the same KafkaConnectionError after ~0.35 s, logged 'Unable connect to
    # "127.0.0.1:<port>": [Error 58] SaslAuthenticationFailed: Authentication failed: Invalid
    # username or password'.
    reason, elapsed = await _refusal(_options(broker, "PLAIN", password="not-the-password"), caplog)
    assert isinstance(reason, SaslAuthenticationFailed)
    assert "Invalid username or password" in str(reason)
    assert elapsed < REFUSAL_BOUND


async def test_a_certificate_from_an_untrusted_ca_is_refused(
    broker: LocalKafka, caplog: pytest.LogCaptureFixture,
) -> None:
    # Observed: the same KafkaConnectionError after ~0.02 s, logged 'Unable connect to
    # "127.0.0.1:<port>": [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed
    # certificate in certificate chain (_ssl.c:...)' -- an ssl.SSLCertVerificationError (the broker
    # sends its CA along, hence "self-signed ... in chain"). No password was sent.
    reason, elapsed = await _refusal(_options(broker, cafile=broker.untrusted_ca_file), caplog)
    assert isinstance(reason, ssl.SSLCertVerificationError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(reason)
    assert elapsed < REFUSAL_BOUND


async def test_a_plaintext_client_on_the_sasl_ssl_port_is_refused(
    broker: LocalKafka, caplog: pytest.LogCaptureFixture,
) -> None:
    # Observed: the same KafkaConnectionError after ~0.01 s, logged 'Unable connect to
    # "127.0.0.1:<port>": KafkaConnectionError: Connection at 127.0.0.1:<port> closed' (the broker
    # reads the request as a bad TLS record and hangs up).
    options = {"bootstrap_servers": broker.secure_bootstrap, "request_timeout_ms": 10_000}
    reason, elapsed = await _refusal(options, caplog)
    assert isinstance(reason, KafkaConnectionError)
    assert "closed" in str(reason)
    assert elapsed < REFUSAL_BOUND


def test_the_plaintext_listener_stays(broker: LocalKafka) -> None:
    # Inter-broker traffic and the existing tooling keep the PLAINTEXT port.
    assert broker.is_up()
    assert LocalKafka(data_dir=broker.data_dir, port=broker.port).is_up()


def test_the_files_clients_need_are_there(broker: LocalKafka) -> None:
    assert broker.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert broker.untrusted_ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert broker.ca_file.read_text() != broker.untrusted_ca_file.read_text()
    assert broker.sasl_username == "edusync"
    assert len(broker.sasl_password) >= 24
    assert broker.credentials_file.stat().st_mode & 0o077 == 0  # the passwords are the owner's only


def test_an_unsecured_broker_has_no_secure_address(tmp_path: Path) -> None:
    plain = LocalKafka(data_dir=tmp_path, port=free_port())
    assert plain.secure_port is None
    with pytest.raises(KafkaLaunchError, match="no SASL_SSL listener"):
        _ = plain.secure_bootstrap


def test_kafka_up_secured_prints_where_to_connect_but_not_the_password(
    broker: LocalKafka, capsys: pytest.CaptureFixture[str],
) -> None:
    from worker.cli import main  # here: the rest of the module needs only the launcher

    # Already running: the CLI finds the running broker's SASL_SSL port from its folder.
    with pytest.raises(SystemExit) as exit_:
        main(["kafka", "up", "--secured", "--data-dir", str(broker.data_dir), "--port", str(broker.port)])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert f"SASL_SSL: bootstrap {broker.secure_bootstrap}" in out
    assert str(broker.ca_file) in out and "user edusync" in out and str(broker.credentials_file) in out
    assert broker.sasl_password not in out


def test_a_restart_reuses_the_certificates_and_the_password(broker: LocalKafka, unique: str) -> None:
    # Last in the module: it restarts the shared broker.
    before = {f: (broker.tls_dir / f).read_bytes() for f in ("ca.pem", "broker.p12", "credentials.json")}
    broker.down()
    again = LocalKafka(data_dir=broker.data_dir, port=broker.port, controller_port=broker.controller_port,
                       secure_port=broker.secure_port, secured=True)
    again.up()
    assert {f: (broker.tls_dir / f).read_bytes() for f in before} == before
    # The SCRAM credential of the first format still matches the stored password.
    assert anyio.run(_round_trip, _options(again), f"secured-restart-{unique}") == b"over SASL_SSL"


def test_a_folder_formatted_without_scram_gets_the_user_when_secured(tmp_path: Path, unique: str) -> None:
    ports = {"data_dir": tmp_path, "port": free_port(), "controller_port": free_port()}
    plain = LocalKafka(**ports)
    plain.up()
    secured = LocalKafka(**ports, secure_port=free_port(), secured=True)
    # Running unsecured: secured mode says so instead of starting a second broker on the folder.
    with pytest.raises(KafkaLaunchError, match="running without SASL_SSL"):
        secured.up()
    plain.down()
    try:
        secured.up()
        options = _options(secured)
        assert anyio.run(_round_trip, options, f"secured-legacy-{unique}") == b"over SASL_SSL"
        credentials = json.loads(secured.credentials_file.read_text())
        assert credentials["username"] == "edusync"
    finally:
        secured.down()
