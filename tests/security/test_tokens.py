"""Random tokens, their hashes, and signed values that only work for their own purpose."""

from __future__ import annotations

import hashlib
import re
import time

import pytest
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from app.security.tokens import BadToken, constant_time_equals, new_token, sign, token_hash, unsign

KEY = "k" * 40


def test_new_token_is_random_urlsafe_and_long_enough() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert len(new_token(16)) == 22
    with pytest.raises(ValueError):
        new_token(15)


def test_token_hash_is_sha256_hex() -> None:
    token = new_token()
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert len(token_hash(token)) == 64 and token_hash(token) == token_hash(token)
    assert token_hash(token) != token_hash(new_token())


def test_constant_time_equals() -> None:
    assert constant_time_equals("abc", "abc") and constant_time_equals(b"abc", "abc")
    assert not constant_time_equals("abc", "abd") and not constant_time_equals("abc", "ab")
    assert constant_time_equals("héllo", "héllo") and not constant_time_equals("héllo", "hello")


@pytest.mark.parametrize("value", [{"user": "u1", "n": 3, "nested": {"a": [1, 2]}}, "someone@example.com", {}])
def test_sign_and_unsign(value: dict[str, object] | str) -> None:
    token = sign(KEY, "email-confirm", value)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)
    assert unsign(KEY, "email-confirm", token, max_age_seconds=60) == value


def _refused(token: str, *, purpose: str = "email-confirm", key: str = KEY) -> BadToken:
    with pytest.raises(BadToken) as caught:
        unsign(key, purpose, token, max_age_seconds=60)
    return caught.value


def test_another_purpose_or_key_or_any_change_is_refused() -> None:
    token = sign(KEY, "email-confirm", {"user": "u1"})
    assert not _refused(token, purpose="password-reset").expired
    assert not _refused(token, key="x" * 40).expired
    # Not the last character: its low bits are base64 padding, so some changes there decode to the same bytes.
    tampered = token[:-10] + ("A" if token[-10] != "A" else "Q") + token[-9:]
    assert not _refused(tampered).expired
    assert not _refused(token.replace(".", "", 1)).expired
    for garbage in ("", "abc", "a.b.c", "é.ü.ö", "\x00"):
        assert not _refused(garbage).expired


def test_an_old_value_is_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 120)
    token = sign(KEY, "password-reset", "u1")
    monkeypatch.undo()
    error = _refused(token, purpose="password-reset")
    assert error.expired
    assert unsign(KEY, "password-reset", token, max_age_seconds=600) == "u1"


def test_a_remembered_value_is_still_checked_for_age_and_stays_as_signed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 120)
    token = sign(KEY, "session", "s1")
    signed_dict = sign(KEY, "session", {"user": "u1", "nested": {"a": 1}})
    monkeypatch.undo()
    assert unsign(KEY, "session", token, max_age_seconds=600) == "s1"  # genuine: now remembered
    assert _refused(token, purpose="session").expired  # the same token, a shorter allowance: too old
    first = unsign(KEY, "session", signed_dict, max_age_seconds=600)
    assert isinstance(first, dict)
    first["user"] = "mallory"
    first["nested"]["a"] = 2
    assert unsign(KEY, "session", signed_dict, max_age_seconds=600) == {"user": "u1", "nested": {"a": 1}}
    # A token signed "in the future" (a clock ahead, or a forged timestamp under a leaked key) is refused too.
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) + 120)
    ahead = sign(KEY, "session", "s2")
    monkeypatch.undo()
    assert _refused(ahead, purpose="session").expired


def test_only_dicts_and_strings_come_back() -> None:
    # Signed with the same key and salt by something other than `sign`: a list is not a value we hand out.
    import hashlib as _hashlib

    other = URLSafeTimedSerializer(KEY, salt="marid.email-confirm", signer_kwargs={"digest_method": _hashlib.sha256})
    assert unsign(KEY, "email-confirm", other.dumps("ok"), max_age_seconds=60) == "ok"
    assert not _refused(other.dumps([1, 2])).expired
    assert not _refused(other.dumps(7)).expired


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        sign(KEY, "", "x")
    with pytest.raises(ValueError):
        unsign(KEY, "p", sign(KEY, "p", "x"), max_age_seconds=0)
