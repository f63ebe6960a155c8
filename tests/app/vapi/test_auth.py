"""app.vapi.auth: only requests carrying a valid proof pass (vapi.md §4, §0 item 7)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json

import pytest

from app.vapi.auth import (
    UNAUTHORIZED_BODY,
    UNAUTHORIZED_STATUS,
    AuthConfig,
    configured,
    sign,
    verify,
)
from tests.app.vapi.payloads import body

NOW = 1_754_400_000.0
BODY = body("tool-calls.current")
SECRET = "s3cr3t-shared-value"
KEY = "hmac-signing-key"


def _hmac(key: bytes, payload: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, payload, getattr(hashlib, algorithm)).digest()


# --- shared secret and bearer -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "ok", "reason"),
    [
        ({"x-vapi-secret": SECRET}, True, "secret"),
        ({"X-Vapi-Secret": SECRET}, True, "secret"),
        ({"x-vapi-secret": f"  {SECRET} "}, True, "secret"),
        ({"authorization": f"Bearer {SECRET}"}, True, "bearer"),
        ({"Authorization": f"bearer {SECRET}"}, True, "bearer"),
        ({"x-vapi-secret": f"Bearer {SECRET}"}, True, "secret"),
        ({"x-vapi-secret": "wrong"}, False, "bad_secret"),
        ({"x-vapi-secret": SECRET[:-1]}, False, "bad_secret"),
        ({"x-vapi-secret": SECRET + "x"}, False, "bad_secret"),
        ({"authorization": "Bearer wrong"}, False, "bad_secret"),
        ({"authorization": f"Basic {SECRET}"}, False, "missing_credentials"),
        ({"authorization": SECRET}, False, "missing_credentials"),
        ({"x-vapi-secret": ""}, False, "missing_credentials"),
        ({}, False, "missing_credentials"),
        ({"x-vapi-secret": "wrong", "authorization": f"Bearer {SECRET}"}, True, "bearer"),
        ({"x-vapi-secret": "ünïcødé"}, False, "bad_secret"),
        ({"x-signature": "ab" * 32}, False, "missing_credentials"),
    ],
    ids=[
        "header",
        "header-any-case",
        "header-padded",
        "bearer",
        "bearer-lowercase-scheme",
        "header-with-bearer-prefix",
        "wrong-secret",
        "prefix-of-secret",
        "secret-plus-one",
        "wrong-bearer",
        "basic-scheme",
        "authorization-without-scheme",
        "empty-header-as-vapi-sends-without-credential",
        "unsigned",
        "wrong-header-right-bearer",
        "non-ascii",
        "only-a-signature",
    ],
)
def test_shared_secret(headers: dict[str, str], ok: bool, reason: str) -> None:
    """The secret passes in its header or as a bearer token; anything else is rejected."""
    result = verify(headers, BODY, AuthConfig(secret=SECRET), NOW)
    assert (result.ok, result.reason) == (ok, reason)


def test_custom_secret_header() -> None:
    """A configured header name is used instead of x-vapi-secret (bearer still works)."""
    config = AuthConfig(secret=SECRET, secret_header="X-Webhook-Token")
    assert verify({"x-webhook-token": SECRET}, BODY, config, NOW).ok
    assert not verify({"x-vapi-secret": SECRET}, BODY, config, NOW).ok
    assert verify({"authorization": f"Bearer {SECRET}"}, BODY, config, NOW).ok


# --- HMAC ---------------------------------------------------------------------------------------

MODES = list(
    itertools.product(
        ["sha256", "sha512", "sha1"],
        ["hex", "base64"],
        ["", "sha256="],
        [None, "s", "ms"],
    )
)
MODE_IDS = [f"{a}-{e}-{'prefix' if p else 'bare'}-{t or 'no-ts'}" for a, e, p, t in MODES]


def _stamp(unit: str | None, now: float = NOW) -> str | None:
    if unit is None:
        return None
    return str(int(now)) if unit == "s" else str(int(now * 1000))


def _config(algorithm: str, encoding: str, prefix: str) -> AuthConfig:
    return AuthConfig(
        hmac_secret=KEY,
        hmac_algorithm=algorithm,  # type: ignore[arg-type]
        hmac_encoding=encoding,  # type: ignore[arg-type]
        hmac_prefix=prefix,
    )


def _reference_headers(config: AuthConfig, raw: bytes, stamp: str | None) -> dict[str, str]:
    """Headers computed independently of app.vapi.auth.sign."""
    payload = raw if stamp is None else stamp.encode() + b"." + raw
    digest = _hmac(KEY.encode(), payload, config.hmac_algorithm)
    encoded = digest.hex() if config.hmac_encoding == "hex" else base64.b64encode(digest).decode()
    headers = {"X-Signature": config.hmac_prefix + encoded}
    if stamp is not None:
        headers["X-Timestamp"] = stamp
    return headers


@pytest.mark.parametrize(("algorithm", "encoding", "prefix", "unit"), MODES, ids=MODE_IDS)
def test_hmac_valid_signature_passes(
    algorithm: str, encoding: str, prefix: str, unit: str | None
) -> None:
    """A correct signature passes in every algorithm, encoding, prefix and timestamp unit."""
    config = _config(algorithm, encoding, prefix)
    headers = _reference_headers(config, BODY, _stamp(unit))
    assert verify(headers, BODY, config, NOW).reason == "hmac"


@pytest.mark.parametrize(("algorithm", "encoding", "prefix", "unit"), MODES, ids=MODE_IDS)
def test_hmac_prefix_is_optional(
    algorithm: str, encoding: str, prefix: str, unit: str | None
) -> None:
    """The same signature passes with the configured prefix added or removed."""
    config = _config(algorithm, encoding, prefix)
    headers = _reference_headers(config, BODY, _stamp(unit))
    bare = headers["X-Signature"].removeprefix(prefix)
    for value in (bare, config.hmac_prefix + bare, f"{algorithm}={bare}"):
        assert verify({**headers, "X-Signature": value}, BODY, config, NOW).ok


@pytest.mark.parametrize(("algorithm", "encoding", "prefix", "unit"), MODES, ids=MODE_IDS)
def test_hmac_tampered_body_is_rejected(
    algorithm: str, encoding: str, prefix: str, unit: str | None
) -> None:
    """Changing one byte of the body, or re-serialising it, breaks the signature."""
    config = _config(algorithm, encoding, prefix)
    headers = _reference_headers(config, BODY, _stamp(unit))
    tampered = BODY.replace(b"4B", b"4C", 1)
    reserialised = json.dumps(json.loads(BODY)).encode()
    for other in (tampered, reserialised, BODY + b" ", b""):
        assert verify(headers, other, config, NOW).reason == "bad_signature"


@pytest.mark.parametrize(("algorithm", "encoding", "prefix", "unit"), MODES, ids=MODE_IDS)
def test_hmac_forged_with_another_key_is_rejected(
    algorithm: str, encoding: str, prefix: str, unit: str | None
) -> None:
    """A signature made with any other key is rejected."""
    config = _config(algorithm, encoding, prefix)
    attacker = AuthConfig(
        hmac_secret="attacker-key",
        hmac_algorithm=config.hmac_algorithm,
        hmac_encoding=config.hmac_encoding,
        hmac_prefix=prefix,
    )
    forged = sign(BODY, attacker, timestamp=_stamp(unit))
    assert verify(forged, BODY, config, NOW).reason == "bad_signature"


@pytest.mark.parametrize("unit", ["s", "ms"])
@pytest.mark.parametrize(
    "offset", [-301.0, 301.0, -86_400.0, 10**6], ids=["old", "future", "day-old", "far"]
)
def test_hmac_replayed_outside_the_skew_is_rejected(unit: str, offset: float) -> None:
    """A genuine signature whose timestamp is more than the skew away from now is a replay."""
    config = AuthConfig(hmac_secret=KEY)
    headers = _reference_headers(config, BODY, _stamp(unit, NOW + offset))
    assert verify(headers, BODY, config, NOW).reason == "stale_timestamp"


@pytest.mark.parametrize("unit", ["s", "ms"])
@pytest.mark.parametrize("offset", [-299.0, 0.0, 299.0], ids=["recent", "now", "slightly-ahead"])
def test_hmac_within_the_skew_passes(unit: str, offset: float) -> None:
    """Clock differences within the skew window are tolerated both ways."""
    config = AuthConfig(hmac_secret=KEY)
    headers = _reference_headers(config, BODY, _stamp(unit, NOW + offset))
    assert verify(headers, BODY, config, NOW).ok


def test_hmac_skew_is_configurable() -> None:
    """hmac_max_skew_s bounds the replay window."""
    config = AuthConfig(hmac_secret=KEY, hmac_max_skew_s=5)
    assert not verify(_reference_headers(config, BODY, _stamp("s", NOW - 6)), BODY, config, NOW).ok
    assert verify(_reference_headers(config, BODY, _stamp("s", NOW - 4)), BODY, config, NOW).ok


def test_hmac_timestamp_cannot_be_stripped_or_swapped() -> None:
    """Removing or replacing the signed timestamp breaks the signature (no replay by editing)."""
    config = AuthConfig(hmac_secret=KEY)
    headers = _reference_headers(config, BODY, _stamp("s", NOW - 3600))
    stripped = {"X-Signature": headers["X-Signature"]}
    refreshed = {**headers, "X-Timestamp": _stamp("s")}
    assert verify(stripped, BODY, config, NOW).reason == "bad_signature"
    assert verify(refreshed, BODY, config, NOW).reason == "bad_signature"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_credentials"),
        ({"x-signature": ""}, "missing_credentials"),
        ({"x-signature": "not hex at all"}, "malformed_signature"),
        ({"x-signature": "abcd"}, "malformed_signature"),
        ({"x-signature": "é" * 64}, "malformed_signature"),
        ({"x-signature": "00" * 32}, "bad_signature"),
        ({"x-signature": "00" * 32, "x-timestamp": "soon"}, "bad_signature"),
    ],
    ids=[
        "unsigned",
        "empty",
        "not-hex",
        "wrong-length",
        "non-ascii",
        "zeros",
        "zeros-bad-timestamp",
    ],
)
def test_hmac_rejections(headers: dict[str, str], reason: str) -> None:
    """Unsigned, malformed and wrong signatures each get their own label."""
    assert verify(headers, BODY, AuthConfig(hmac_secret=KEY), NOW).reason == reason


def test_hmac_valid_signature_with_unparseable_timestamp_is_rejected() -> None:
    """A signature over a timestamp that is not a time is rejected as malformed_timestamp."""
    config = AuthConfig(hmac_secret=KEY)
    headers = _reference_headers(config, BODY, "soon")
    assert verify(headers, BODY, config, NOW).reason == "malformed_timestamp"


def test_known_hmac_vector() -> None:
    """RFC-style vector: HMAC-SHA256("key", "The quick brown fox...") in x-vapi-signature."""
    config = AuthConfig(hmac_secret="key")
    text = b"The quick brown fox jumps over the lazy dog"
    expected = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert verify({"x-vapi-signature": expected}, text, config, NOW).ok
    assert verify({"x-vapi-signature": expected.upper()}, text, config, NOW).ok


def test_x_vapi_signature_is_always_accepted() -> None:
    """The production header name x-vapi-signature works beside a custom configured header."""
    config = AuthConfig(hmac_secret=KEY, hmac_header="x-custom-sig")
    signature = sign(BODY, config)["x-custom-sig"]
    assert verify({"X-Vapi-Signature": signature}, BODY, config, NOW).ok
    assert verify({"x-custom-sig": signature}, BODY, config, NOW).ok
    assert not verify({"x-signature": signature}, BODY, config, NOW).ok


def test_one_good_signature_among_headers_is_enough() -> None:
    """A stale copy in one signature header does not hide a valid one in the other."""
    config = AuthConfig(hmac_secret=KEY)
    good = sign(BODY, config)["x-signature"]
    assert verify({"x-signature": "00" * 32, "x-vapi-signature": good}, BODY, config, NOW).ok


def test_include_timestamp_true_requires_the_header() -> None:
    """With hmac_include_timestamp=True a body-only signature is not enough (replay-proof)."""
    config = AuthConfig(hmac_secret=KEY, hmac_include_timestamp=True)
    body_only = _reference_headers(config, BODY, None)
    assert verify(body_only, BODY, config, NOW).reason == "missing_timestamp"
    assert verify(_reference_headers(config, BODY, _stamp("ms")), BODY, config, NOW).ok


def test_include_timestamp_false_ignores_the_header() -> None:
    """With hmac_include_timestamp=False a sent x-timestamp is not part of the signed payload."""
    config = AuthConfig(hmac_secret=KEY, hmac_include_timestamp=False)
    headers = {**_reference_headers(config, BODY, None), "x-timestamp": _stamp("s")}
    assert verify(headers, BODY, config, NOW).ok


def test_custom_timestamp_header() -> None:
    """A configured timestamp header name is read instead of x-timestamp."""
    config = AuthConfig(hmac_secret=KEY, hmac_timestamp_header="X-Vapi-Timestamp")
    headers = sign(BODY, config, timestamp=NOW)
    assert "x-vapi-timestamp" in headers
    assert verify(headers, BODY, config, NOW).ok


def test_base64_secret() -> None:
    """hmac_secret_is_base64 decodes the key before signing (VAPI's secretIsBase64)."""
    raw_key = bytes(range(32))
    config = AuthConfig(hmac_secret=base64.b64encode(raw_key).decode(), hmac_secret_is_base64=True)
    signature = _hmac(raw_key, BODY).hex()
    assert verify({"x-signature": signature}, BODY, config, NOW).ok


def test_url_safe_unpadded_base64_signature() -> None:
    """Base64 signatures are accepted in URL-safe and unpadded spellings too."""
    config = AuthConfig(hmac_secret=KEY, hmac_encoding="base64")
    digest = _hmac(KEY.encode(), BODY)
    for value in (
        base64.b64encode(digest).decode(),
        base64.urlsafe_b64encode(digest).decode(),
        base64.urlsafe_b64encode(digest).decode().rstrip("="),
    ):
        assert verify({"x-signature": value}, BODY, config, NOW).ok


# --- both modes, no mode ------------------------------------------------------------------------

BOTH = AuthConfig(secret=SECRET, hmac_secret=KEY)


@pytest.mark.parametrize(
    ("headers", "ok", "reason"),
    [
        ({"x-vapi-secret": SECRET}, True, "secret"),
        ({"authorization": f"Bearer {SECRET}"}, True, "bearer"),
        (sign(BODY, AuthConfig(hmac_secret=KEY), timestamp=NOW), True, "hmac"),
        (
            {"x-vapi-secret": "", **sign(BODY, AuthConfig(hmac_secret=KEY))},
            True,
            "hmac",
        ),
        ({"x-vapi-secret": "wrong", "x-signature": "00" * 32}, False, "bad_signature"),
        ({"x-vapi-secret": "wrong"}, False, "bad_secret"),
        ({}, False, "missing_credentials"),
    ],
    ids=[
        "secret-only",
        "bearer-only",
        "hmac-only",
        "empty-secret-header-plus-hmac",
        "both-wrong",
        "wrong-secret-no-signature",
        "nothing",
    ],
)
def test_either_valid_proof_is_enough_when_both_are_configured(
    headers: dict[str, str], ok: bool, reason: str
) -> None:
    """With a secret and an HMAC key configured, one valid proof passes; none fails."""
    result = verify(headers, BODY, BOTH, NOW)
    assert (result.ok, result.reason) == (ok, reason)


def test_nothing_configured_lets_everything_through() -> None:
    """No secret and no HMAC key: auth is off (the app warns at start-up via configured())."""
    config = AuthConfig(secret="", hmac_secret="   ")
    assert not configured(config)
    assert verify({}, BODY, config, NOW).reason == "auth_disabled"
    assert configured(AuthConfig(secret="x"))
    assert configured(AuthConfig(hmac_secret="x"))


@pytest.mark.parametrize(
    "config",
    [
        AuthConfig(secret=SECRET),
        AuthConfig(hmac_secret=KEY),
        AuthConfig(hmac_secret=KEY, hmac_algorithm="sha512", hmac_encoding="base64"),
        AuthConfig(hmac_secret=KEY, hmac_prefix="sha256=", hmac_include_timestamp=True),
        AuthConfig(hmac_secret=KEY, hmac_include_timestamp=False),
        BOTH,
    ],
    ids=["secret", "hmac", "hmac-sha512-b64", "hmac-prefixed-timestamped", "hmac-no-ts", "both"],
)
def test_sign_produces_headers_that_verify(config: AuthConfig) -> None:
    """sign() is the inverse of verify() for every configuration (README curl, benchmarks)."""
    assert verify(sign(BODY, config, timestamp=NOW), BODY, config, NOW).ok


def test_sign_formats_timestamps() -> None:
    """Integral timestamps are sent without a decimal point; text timestamps as given."""
    config = AuthConfig(hmac_secret=KEY)
    assert sign(BODY, config, timestamp=NOW)["x-timestamp"] == "1754400000"
    assert sign(BODY, config, timestamp="1754400000000")["x-timestamp"] == "1754400000000"
    assert "x-timestamp" not in sign(BODY, config)


def test_sign_refuses_to_omit_a_required_timestamp() -> None:
    """sign() cannot produce an unverifiable request for a timestamp-required config."""
    with pytest.raises(ValueError):
        sign(BODY, AuthConfig(hmac_secret=KEY, hmac_include_timestamp=True))


def test_unauthorized_reply_reveals_nothing() -> None:
    """One generic 401 body for every failure: no reason, no header names."""
    assert UNAUTHORIZED_STATUS == 401
    assert dict(UNAUTHORIZED_BODY) == {"error": "unauthorized"}


def test_repr_masks_secrets() -> None:
    """Secrets never appear in the config's repr (logs, tracebacks)."""
    text = repr(BOTH)
    assert SECRET not in text and KEY not in text
    assert "***" in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hmac_algorithm": "md5"},
        {"hmac_encoding": "base32"},
        {"hmac_max_skew_s": 0},
        {"secret_header": " "},
        {"hmac_secret": "not base64!", "hmac_secret_is_base64": True},
    ],
    ids=["algorithm", "encoding", "skew", "header", "base64-secret"],
)
def test_invalid_config_is_refused_at_start_up(kwargs: dict[str, object]) -> None:
    """A misconfiguration fails when the config is built, not on the first webhook."""
    with pytest.raises(ValueError):
        AuthConfig(**kwargs)  # type: ignore[arg-type]
