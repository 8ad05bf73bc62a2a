"""How every Kafka client edusync opens reaches the cluster: address, TLS/SASL and namespace.

Code names topics, groups and transactional ids by their logical ``edusync.`` names (the
constants of ``worker.topics``); the Kafka wrappers translate them to physical names here, at
the boundary, so one ``kafka.namespace`` moves a whole deployment without touching the flows.
A plain bootstrap string stands for a plaintext connection in the default namespace.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

from aiokafka.helpers import create_ssl_context

DEFAULT_NAMESPACE = "edusync"
_LOGICAL = DEFAULT_NAMESPACE + "."


@dataclass(frozen=True)
class KafkaConnection:
    """One cluster as a deployment sees it. Hashable: processes key shared views by it."""

    bootstrap: str
    namespace: str = DEFAULT_NAMESPACE
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    check_hostname: bool = True

    def name(self, logical: str) -> str:
        """The physical name of a topic, group or transactional id: ``edusync.x`` becomes
        ``<namespace>.x``; any other name gets ``<namespace>.`` in front (identity by default)."""
        if self.namespace == DEFAULT_NAMESPACE:
            return logical
        if logical.startswith(_LOGICAL):
            return f"{self.namespace}.{logical[len(_LOGICAL):]}"
        return f"{self.namespace}.{logical}"

    def names(self, logical: list[str] | tuple[str, ...]) -> list[str]:
        """``name`` of each."""
        return [self.name(n) for n in logical]

    def options(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and ``AIOKafkaAdminClient``."""
        opts: dict[str, Any] = {"bootstrap_servers": self.bootstrap, "security_protocol": self.protocol}
        if self.protocol in ("SSL", "SASL_SSL"):
            opts["ssl_context"] = self.ssl_context()
        if self.protocol.startswith("SASL_"):
            opts.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                        sasl_plain_password=self.password)
        return opts

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context: the configured CA (else the system's), an optional client certificate."""
        context: ssl.SSLContext = create_ssl_context(cafile=self.ca_file, certfile=self.cert_file,
                                                     keyfile=self.key_file)
        context.check_hostname = self.check_hostname
        return context


Kafka = str | KafkaConnection


def connect(kafka: Kafka) -> KafkaConnection:
    """``kafka`` as a connection; a bare bootstrap string is plaintext in the default namespace."""
    return kafka if isinstance(kafka, KafkaConnection) else KafkaConnection(kafka)
