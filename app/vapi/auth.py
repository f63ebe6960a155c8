"""Verify that a webhook came from VAPI: shared secret, bearer token, HMAC (vapi.md §4, §0 item 7).

Pure: :func:`verify` takes the request headers (any mapping; names are matched
case-insensitively), the raw body bytes, an :class:`AuthConfig` and the current wall-clock time
(epoch seconds), and returns an :class:`AuthResult` whose ``reason`` is a short label for logs and
metrics. The HTTP reply to a failure must reveal nothing: it is always :data:`UNAUTHORIZED_STATUS`
with :data:`UNAUTHORIZED_BODY`, whatever the reason.

Proofs accepted (vapi.md §4):

* **Shared secret**: the raw secret in ``secret_header`` (default ``x-vapi-secret``; the legacy
  ``serverUrlSecret``, or a bearer credential with that header name and the prefix off), or
  ``Authorization: Bearer <secret>`` (a bearer credential with its defaults). An empty header
  (VAPI sends an empty ``X-Vapi-Secret`` when no credential is attached) counts as absent.
* **HMAC** over the *raw* body bytes with ``hmac_algorithm`` (sha256|sha512|sha1), read from
  ``hmac_header`` (default ``x-signature``) and always also from ``x-vapi-signature`` (seen in
  production), encoded ``hex`` or ``base64``, with ``hmac_prefix`` (e.g. ``sha256=``) or the
  ``<algorithm>=`` prefix accepted whether present or not. The signed payload is
  ``{timestamp}.{body}`` when the timestamp header is sent and ``{body}`` when not (VAPI's
  ``payloadFormat`` default and the production no-timestamp setup). ``hmac_include_timestamp``
  mirrors VAPI's ``includeTimestamp``: ``None`` decides by the header's presence, ``True``
  requires it (replay protection cannot be stripped), ``False`` ignores it (for the open question
  in vapi.md §8 of whether ``x-timestamp`` is sent when ``includeTimestamp=false``). Timestamps
  are epoch seconds or milliseconds (§8: unit unconfirmed) and must be within
  ``hmac_max_skew_s`` of ``now`` either way; a valid signature with a stale timestamp is a replay.

Rule when both a secret and an HMAC secret are configured: **either valid proof is enough**.
VAPI attaches one credential per server (org, phone number, assistant, tool: vapi.md §4), so one
endpoint legitimately receives bearer-authenticated and HMAC-signed deliveries; requiring both
would reject all real traffic, and VAPI never sends both. The price is that the endpoint is as
strong as the weaker proof: a leaked shared secret is enough, and only HMAC with timestamps
resists replay. Configure HMAC alone to get replay protection. When several proofs are presented
and none is valid, the HMAC failure is reported first (it is the more specific label).

Every comparison of a secret or digest uses :func:`hmac.compare_digest`. :func:`verify` never
raises for any headers or body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from app.vapi.messages import parse_timestamp

Algorithm = Literal["sha256", "sha512", "sha1"]
Encoding = Literal["hex", "base64"]
AuthReason = Literal[
    # accepted
    "auth_disabled",
    "secret",
    "bearer",
    "hmac",
    # rejected
    "missing_credentials",
    "bad_secret",
    "bad_signature",
    "malformed_signature",
    "missing_timestamp",
    "malformed_timestamp",
    "stale_timestamp",
]

ALGORITHMS: Final[dict[str, Any]] = {
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "sha1": hashlib.sha1,
}
ENCODINGS: Final = ("hex", "base64")
EXTRA_SIGNATURE_HEADERS: Final = ("x-vapi-signature",)

UNAUTHORIZED_STATUS: Final = 401
UNAUTHORIZED_BODY: Final[Mapping[str, str]] = {"error": "unauthorized"}
"""The one reply to every failed verification: no reason, no hint which proof was expected."""


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """What this deployment accepts. Empty strings count as "not configured"."""

    secret: str | None = None
    secret_header: str = "x-vapi-secret"
    hmac_secret: str | None = None
    hmac_algorithm: Algorithm = "sha256"
    hmac_header: str = "x-signature"
    hmac_encoding: Encoding = "hex"
    hmac_prefix: str = ""
    hmac_timestamp_header: str = "x-timestamp"
    hmac_max_skew_s: float = 300.0
    hmac_include_timestamp: bool | None = None
    hmac_secret_is_base64: bool = False

    def __post_init__(self) -> None:
        for name in ("secret", "hmac_secret"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                object.__setattr__(self, name, None)
        for name in ("secret_header", "hmac_header", "hmac_timestamp_header"):
            value = getattr(self, name)
            if not value or not value.strip():
                raise ValueError(f"AuthConfig.{name} must be a header name")
            object.__setattr__(self, name, value.strip().lower())
        if self.hmac_algorithm not in ALGORITHMS:
            raise ValueError(f"AuthConfig.hmac_algorithm must be one of {sorted(ALGORITHMS)}")
        if self.hmac_encoding not in ENCODINGS:
            raise ValueError(f"AuthConfig.hmac_encoding must be one of {list(ENCODINGS)}")
        if not self.hmac_max_skew_s > 0:
            raise ValueError("AuthConfig.hmac_max_skew_s must be positive")
        if self.hmac_secret is not None and self.hmac_secret_is_base64:
            try:
                base64.b64decode(self.hmac_secret, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("AuthConfig.hmac_secret is not valid base64") from None

    def __repr__(self) -> str:
        masked = {
            "secret": "***" if self.secret else None,
            "hmac_secret": "***" if self.hmac_secret else None,
        }
        rest = ", ".join(
            f"{name}={masked.get(name, getattr(self, name))!r}"
            for name in self.__dataclass_fields__
        )
        return f"AuthConfig({rest})"


@dataclass(frozen=True, slots=True)
class AuthResult:
    ok: bool
    reason: AuthReason


def configured(config: AuthConfig) -> bool:
    """True when at least one proof is required (False: every request passes; warn at start-up)."""
    return bool(config.secret or config.hmac_secret)


def verify(headers: Mapping[str, str], body: bytes, config: AuthConfig, now: float) -> AuthResult:
    """Accept the request if any configured proof is valid (see the module docstring)."""
    if not configured(config):
        return AuthResult(ok=True, reason="auth_disabled")
    lowered = _lower(headers)
    raw = _as_bytes(body)
    failures: list[AuthResult] = []
    if config.hmac_secret:
        result = _verify_hmac(lowered, raw, config, now)
        if result.ok:
            return result
        failures.append(result)
    if config.secret:
        result = _verify_secret(lowered, config)
        if result.ok:
            return result
        failures.append(result)
    presented = [f for f in failures if f.reason != "missing_credentials"]
    return presented[0] if presented else AuthResult(ok=False, reason="missing_credentials")


def sign(body: bytes, config: AuthConfig, timestamp: float | str | None = None) -> dict[str, str]:
    """Headers that :func:`verify` accepts for ``body`` (for tests, benchmarks, the README's curl).

    Carries every configured proof: the shared secret in ``secret_header``, and the HMAC
    signature (with ``hmac_prefix``) plus the timestamp header when ``timestamp`` is given.
    """
    headers: dict[str, str] = {}
    if config.secret:
        headers[config.secret_header] = config.secret
    if config.hmac_secret:
        stamp = None if config.hmac_include_timestamp is False else timestamp
        if config.hmac_include_timestamp and stamp is None:
            raise ValueError("this AuthConfig requires a timestamp to sign")
        stamp_text = _format_timestamp(stamp) if stamp is not None else None
        digest = _digest(config, _payload(_as_bytes(body), stamp_text))
        if config.hmac_encoding == "hex":
            encoded = digest.hex()
        else:
            encoded = base64.b64encode(digest).decode("ascii")
        headers[config.hmac_header] = config.hmac_prefix + encoded
        if stamp_text is not None:
            headers[config.hmac_timestamp_header] = stamp_text
    return headers


def _verify_secret(headers: Mapping[str, str], config: AuthConfig) -> AuthResult:
    assert config.secret is not None
    expected = config.secret.encode("utf-8", "surrogatepass")
    candidates: list[tuple[AuthReason, str]] = []
    direct = _strip_bearer(headers.get(config.secret_header, ""))
    if direct:
        candidates.append(("secret", direct))
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        candidates.append(("bearer", token.strip()))
    if not candidates:
        return AuthResult(ok=False, reason="missing_credentials")
    for label, value in candidates:
        if hmac.compare_digest(value.encode("utf-8", "surrogatepass"), expected):
            return AuthResult(ok=True, reason=label)
    return AuthResult(ok=False, reason="bad_secret")


def _verify_hmac(
    headers: Mapping[str, str], body: bytes, config: AuthConfig, now: float
) -> AuthResult:
    names = dict.fromkeys((config.hmac_header, *EXTRA_SIGNATURE_HEADERS))
    signatures = [headers[n].strip() for n in names if headers.get(n, "").strip()]
    if not signatures:
        return AuthResult(ok=False, reason="missing_credentials")
    stamp: str | None = None
    if config.hmac_include_timestamp is not False:
        stamp = headers.get(config.hmac_timestamp_header, "").strip() or None
        if stamp is None and config.hmac_include_timestamp:
            return AuthResult(ok=False, reason="missing_timestamp")
    expected = _digest(config, _payload(body, stamp))
    matched = well_formed = False
    for value in signatures:
        decoded = _decode_signature(value, config, len(expected))
        if decoded is None:
            continue
        well_formed = True
        matched = hmac.compare_digest(decoded, expected) or matched
    if not matched:
        return AuthResult(
            ok=False, reason="bad_signature" if well_formed else "malformed_signature"
        )
    if stamp is not None:
        sent_at = parse_timestamp(stamp)
        if sent_at is None:
            return AuthResult(ok=False, reason="malformed_timestamp")
        if not abs(now - sent_at) <= config.hmac_max_skew_s:
            return AuthResult(ok=False, reason="stale_timestamp")
    return AuthResult(ok=True, reason="hmac")


def _payload(body: bytes, stamp: str | None) -> bytes:
    if stamp is None:
        return body
    return stamp.encode("utf-8", "surrogatepass") + b"." + body


def _digest(config: AuthConfig, payload: bytes) -> bytes:
    assert config.hmac_secret is not None
    if config.hmac_secret_is_base64:
        key = base64.b64decode(config.hmac_secret)
    else:
        key = config.hmac_secret.encode("utf-8", "surrogatepass")
    return hmac.new(key, payload, ALGORITHMS[config.hmac_algorithm]).digest()


def _decode_signature(value: str, config: AuthConfig, size: int) -> bytes | None:
    """The raw digest bytes a header carries, or None when it is not a well-formed signature."""
    lowered = value.lower()
    for prefix in (config.hmac_prefix, f"{config.hmac_algorithm}="):
        if prefix and lowered.startswith(prefix.lower()):
            value = value[len(prefix) :].strip()
            break
    try:
        if config.hmac_encoding == "hex":
            decoded = bytes.fromhex(value)
        else:
            standard = value.replace("-", "+").replace("_", "/")
            decoded = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (ValueError, binascii.Error):  # non-hex, non-base64, non-ASCII
        return None
    return decoded if len(decoded) == size else None


def _strip_bearer(value: str) -> str:
    value = value.strip()
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else value


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if isinstance(k, str) and isinstance(v, str)}


def _as_bytes(body: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    return bytes(body)


def _format_timestamp(stamp: float | str) -> str:
    if isinstance(stamp, str):
        return stamp
    return str(int(stamp)) if float(stamp).is_integer() else repr(float(stamp))
