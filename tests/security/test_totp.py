"""TOTP: secrets, enrolment QR code, single-use codes with drift; recovery codes."""

from __future__ import annotations

import base64
import re
import time
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from app.security.totp import (
    RECOVERY_ALPHABET,
    generate_recovery_codes,
    hash_recovery_code,
    match_recovery_code,
    new_totp_secret,
    normalise_recovery_code,
    provisioning_uri,
    qr_svg,
    verify_totp,
)

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
AT = 1_800_000_015.0  # inside step 60,000,000
STEP = 60_000_000
PEPPER = "p" * 40


def _code(step: int, secret: str = SECRET) -> str:
    return pyotp.TOTP(secret).at(step * 30)


def test_secrets_have_160_bits() -> None:
    secrets = {new_totp_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)
        assert len(base64.b32decode(secret)) == 20


def test_provisioning_uri() -> None:
    uri = provisioning_uri(SECRET, "ann+work@example.com")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert unquote(parts.path) == "/Marid:ann+work@example.com"
    query = parse_qs(parts.query)
    assert query["secret"] == [SECRET] and query["issuer"] == ["Marid"]
    assert "issuer=Acme" in provisioning_uri(SECRET, "a@b.c", issuer="Acme")


def test_qr_svg_is_one_inert_svg_element() -> None:
    svg = qr_svg(provisioning_uri(SECRET, "ann@example.com"))
    assert svg.startswith("<svg ") and svg.endswith("</svg>")
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    allowed_tags = {"{http://www.w3.org/2000/svg}svg", "{http://www.w3.org/2000/svg}path"}
    allowed_attributes = {"width", "height", "class", "transform", "stroke", "d", "viewBox", "fill"}
    for element in root.iter():
        assert element.tag in allowed_tags
        assert set(element.attrib) <= allowed_attributes, element.attrib
        assert not (element.text or "").strip()
    lowered = svg.lower()
    for forbidden in ("<script", "href", "url(", "<!", "<?", "javascript:", "<style", "<foreignobject", "<image"):
        assert forbidden not in lowered
    assert SECRET not in svg and "example.com" not in svg
    assert qr_svg(provisioning_uri(SECRET, "bob@example.com")) != svg


def test_codes_are_accepted_with_one_step_of_drift() -> None:
    for step in (STEP - 1, STEP, STEP + 1):
        assert verify_totp(SECRET, _code(step), last_used_step=None, at=AT) == step
    for step in (STEP - 2, STEP + 2):
        assert verify_totp(SECRET, _code(step), last_used_step=None, at=AT) is None
    now_code = pyotp.TOTP(SECRET).now()
    assert verify_totp(SECRET, now_code, last_used_step=None) is not None
    assert verify_totp(new_totp_secret(), _code(STEP), last_used_step=None, at=AT) is None


def test_a_code_is_single_use() -> None:
    code = _code(STEP)
    used = verify_totp(SECRET, code, last_used_step=None, at=AT)
    assert used == STEP
    assert verify_totp(SECRET, code, last_used_step=used, at=AT) is None
    assert verify_totp(SECRET, code, last_used_step=used, at=AT + 25) is None
    # An older code than the last one used is refused too, even within the drift window.
    assert verify_totp(SECRET, _code(STEP - 1), last_used_step=used, at=AT) is None
    assert verify_totp(SECRET, _code(STEP + 1), last_used_step=used, at=AT) == STEP + 1
    assert verify_totp(SECRET, code, last_used_step=STEP - 1, at=AT) == STEP


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12345a", "١٢٣٤٥٦", "123-456", "+12345", "0x1234"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert verify_totp(SECRET, code, last_used_step=None, at=AT) is None


def test_spaces_are_ignored_and_bad_secrets_refused() -> None:
    code = _code(STEP)
    assert verify_totp(SECRET, f" {code[:3]} {code[3:]}\n", last_used_step=None, at=AT) == STEP
    for secret in ("", "not base32!", "é", "1"):
        assert verify_totp(secret, code, last_used_step=None, at=AT) is None


def test_recovery_codes_have_80_bits_and_a_friendly_format() -> None:
    codes = generate_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    assert len(generate_recovery_codes(3)) == 3
    for code in codes:
        assert re.fullmatch(r"[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}", code)
        assert set(code.replace("-", "")) <= set(RECOVERY_ALPHABET)
        assert not set(code) & set("ilou")
    assert len(RECOVERY_ALPHABET) == 32 and len(set(RECOVERY_ALPHABET)) == 32  # 5 bits a character, 16 characters


def test_recovery_code_hashes_ignore_case_separators_and_lookalikes() -> None:
    hashed = hash_recovery_code("0k1q-2345-6789-abcd", PEPPER)
    assert re.fullmatch(r"[0-9a-f]{64}", hashed)
    for typed in (
        "0K1Q-2345-6789-ABCD",
        "0k1q 2345 6789 abcd",
        "0k1q23456789abcd",
        "ok lq-2345-6789-abcd",
        "OKIQ23456789ABCD",
    ):
        assert normalise_recovery_code(typed) == "0k1q23456789abcd"
        assert hash_recovery_code(typed, PEPPER) == hashed
    assert hash_recovery_code("0k1q-2345-6789-abcd", "another pepper" * 3) != hashed


def test_match_recovery_code_returns_the_index() -> None:
    codes = generate_recovery_codes()
    hashes = [hash_recovery_code(code, PEPPER) for code in codes]
    started = time.perf_counter()
    assert match_recovery_code(codes[7].upper().replace("-", " "), hashes, PEPPER) == 7
    assert time.perf_counter() - started < 0.05
    assert match_recovery_code(codes[0], hashes, PEPPER) == 0
    assert match_recovery_code(generate_recovery_codes(1)[0], hashes, PEPPER) is None
    assert match_recovery_code(codes[0], hashes, "wrong pepper" * 4) is None
    assert match_recovery_code(codes[0], [], PEPPER) is None
    for malformed in ("", codes[0][:-1], codes[0] + "x", "uuuu-uuuu-uuuu-uuuu", "é" * 16):
        assert match_recovery_code(malformed, hashes, PEPPER) is None
