"""OAuth 1.0 HMAC-SHA1 verification for the simulator, done with oauthlib (ref L3303-L3313).

Accepts the header with or without percent-encoded values (the documented example leaves
the signature's "=" raw, libraries encode it, ref L154-L156) and with or without spaces
after the commas. OAuth parameters in the query string are refused: the document says
they must be in the header (ref L3304).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

_REQUIRED = ("oauth_consumer_key", "oauth_token", "oauth_signature_method", "oauth_signature",
             "oauth_nonce", "oauth_timestamp")


@dataclass(frozen=True)
class Credentials:
    """One consumer plus one pre-issued user token; ``sites`` limits what it may read
    (None: every site), so a request for another site's data is a 403 (ref L3314)."""

    consumer_key: str
    consumer_secret: str
    token: str
    token_secret: str
    sites: frozenset[int] | None = None


# Fake credentials for local use: tests, the demo and anyone pointing a client at the simulator.
DEFAULT_CREDENTIALS = Credentials(
    consumer_key="edusync-sim-consumer-key",
    consumer_secret="edusync-sim-consumer-secret",
    token="edusync-sim-user-token",
    token_secret="edusync-sim-user-secret",
)


class OAuthVerifier:
    """Checks signed requests against a set of credentials."""

    def __init__(
        self, credentials: list[Credentials], *, timestamp_window: float | None = None,
        check_nonce: bool = False,
    ) -> None:
        self._consumers = {c.consumer_key: c.consumer_secret for c in credentials}
        self._tokens = {(c.consumer_key, c.token): c for c in credentials}
        # Undocumented upstream (ref L3313): both checks are off unless configured.
        self.timestamp_window = timestamp_window
        self.check_nonce = check_nonce
        self._nonces: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def verify(self, method: str, url: str, authorization: str | None) -> Credentials | None:
        """The credentials that signed this request, or None if it is not validly signed."""
        if not authorization or authorization[:6].lower() != "oauth ":
            return None
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if any(k.startswith("oauth_") for k, _ in query):
            return None
        try:
            header = {k: oauth_utils.unescape(v) for k, v in
                      oauth_utils.parse_authorization_header(authorization)}
        except (ValueError, TypeError):
            return None
        if any(k not in header for k in _REQUIRED) or header["oauth_signature_method"] != "HMAC-SHA1":
            return None
        if header.get("oauth_version", "1.0") != "1.0":
            return None
        creds = self._tokens.get((header["oauth_consumer_key"], header["oauth_token"]))
        if creds is None or not self._fresh(header):
            return None
        request = OAuthRequest(url, http_method=method.upper())
        request.params = oauth_signature.collect_parameters(
            uri_query=parts.query, headers={"Authorization": authorization}, exclude_oauth_signature=True,
        )
        request.signature = header["oauth_signature"]
        if not oauth_signature.verify_hmac_sha1(request, creds.consumer_secret, creds.token_secret):
            return None
        return creds

    def _fresh(self, header: dict[str, str]) -> bool:
        if self.timestamp_window is not None:
            try:
                stamp = int(header["oauth_timestamp"])
            except ValueError:
                return False
            if abs(time.time() - stamp) > self.timestamp_window:
                return False
        if self.check_nonce:
            key = (header["oauth_consumer_key"], header["oauth_timestamp"], header["oauth_nonce"])
            if key in self._nonces:
                return False
            self._nonces[key] = None
            if len(self._nonces) > 100_000:
                self._nonces.popitem(last=False)
        return True
