"""One direct connection before anything else, so a refused certificate or password is one clear
error at start-up. aiokafka's clients log such failures and retry until a timeout that only says
the broker was unreachable."""

from __future__ import annotations

import ssl

import anyio
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError

from worker.kafka.connection import KafkaConnection
from worker.kafka.errors import KafkaSecurityError

CHECK_SECONDS = 15.0


def first_address(bootstrap: str) -> tuple[str, int]:
    """The host and port of the first bootstrap server."""
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host.strip("[]") or first, int(port or 9092)


async def check_security(connection: KafkaConnection) -> None:
    """Connect once with the configured TLS and SASL; raise ``KafkaSecurityError`` if the broker
    refuses us. An unreachable broker passes: the caller waits for it with its own patience."""
    if connection.protocol == "PLAINTEXT":
        return
    host, port = first_address(connection.bootstrap)
    where = f"{host}:{port}"
    opts = connection.options()
    opts.pop("bootstrap_servers")
    try:
        with anyio.fail_after(CHECK_SECONDS):
            conn = await create_conn(host, port, client_id="edusync-security-check", **opts)
        conn.close()
    except ssl.SSLCertVerificationError as exc:
        trust = connection.ca_file or "the system's CA bundle"
        raise KafkaSecurityError(
            f"Kafka TLS: the certificate of {where} is not trusted by {trust} ({exc.verify_message}); "
            "set kafka.security.ca_file to the CA that signed it") from exc
    except ssl.SSLError as exc:
        raise KafkaSecurityError(f"Kafka TLS handshake with {where} failed: {exc.reason or exc}") from exc
    except (KafkaConnectionError, OSError, TimeoutError):
        return
    except KafkaError as exc:  # SaslAuthenticationFailedError, UnsupportedSaslMechanismError, ...
        detail = str(exc) or type(exc).__name__
        raise KafkaSecurityError(
            f"Kafka SASL {connection.sasl_mechanism}: {where} refused user {connection.username!r}: {detail}"
        ) from exc
