"""argon2id hashing that never raises on a bad hash, and the rules a new password must meet."""

from __future__ import annotations

import unicodedata

import pytest
from argon2 import PasswordHasher

from app.security import passwords
from app.security.passwords import hash_password, needs_rehash, password_problem, verify_password

GOOD = "correct horse battery staple"


def test_hash_then_verify() -> None:
    hashed = hash_password(GOOD)
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(hashed, GOOD)
    assert not verify_password(hashed, GOOD + " ")
    assert hash_password(GOOD) != hashed, "each hash has its own salt"
    assert not needs_rehash(hashed)


def test_equivalent_unicode_forms_are_the_same_password() -> None:
    composed = "crème brûlée à la café"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert verify_password(hash_password(composed), decomposed)


@pytest.mark.parametrize(
    "bad_hash",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=65536,t=3,p=4$garbage",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$",
        "$2b$12$KIXQhYQ3jZ8e1yAc5a0cSOa9C1Ls0ttFVGp1pT3X9kdGyfH2n5aXW",  # bcrypt
        "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",  # parameters argon2 refuses
        "\x00\xff",
    ],
)
def test_a_malformed_hash_verifies_nothing_and_never_raises(bad_hash: str) -> None:
    assert verify_password(bad_hash, GOOD) is False
    assert needs_rehash(bad_hash) is True


def test_no_account_still_costs_a_verification() -> None:
    assert verify_password(None, GOOD) is False


def test_older_parameters_need_a_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(GOOD)
    assert verify_password(weak, GOOD), "old hashes keep working"
    assert needs_rehash(weak)


def test_length_is_12_to_128_characters_after_normalisation() -> None:
    assert password_problem("tiny pw") == ("Use at least 12 characters; a few unrelated words make a good password.")
    assert password_problem("zq7 wvx plmk") is None  # exactly 12
    assert password_problem("zq7 wvx plm") is not None  # 11
    long = "ab cd ef gh " * 10 + "zyxwvuts"  # 128
    assert len(long) == 128 and password_problem(long) is None
    assert password_problem(long + "q") == "Use at most 128 characters."
    # Twelve code points but six characters once composed.
    assert password_problem("e\u0301" * 6) is not None
    # Any script is welcome; CJK characters count one each.
    assert password_problem("日本語のパスワードです長い") is None


def test_common_passwords_are_refused_whatever_their_case() -> None:
    common = passwords._common_passwords()
    assert len(common) >= 10_000 and "password" in common and "123456" in common
    message = "This is one of the most common passwords, so it is among the first ones attackers try. Choose another."
    assert password_problem("1qaz2wsx3edc") == message
    assert password_problem("1QAZ2WSX3EDC") == message
    assert password_problem("qwerty123456") == message
    assert passwords.is_common_password("Password")


def test_the_email_local_part_is_refused_inside_the_password() -> None:
    message = "Your password must not contain your e-mail address. Choose another."
    assert password_problem("jonathan.doe", email="Jonathan.Doe@example.com") == message
    assert password_problem("my name is JONATHAN.DOE!", email="jonathan.doe@example.com") == message
    assert password_problem("sailing with jonathan", email="jonathan+news@example.com") == message
    # Too short a local part to refuse: "ann" occurs in plenty of good passphrases.
    assert password_problem("annual planning meeting", email="ann@example.com") is None
    assert password_problem("annual planning meeting", email="") is None
    assert password_problem(GOOD, email="jonathan.doe@example.com") is None


def test_messages_are_sentences() -> None:
    for problem in (password_problem("short"), password_problem("x" * 200), password_problem("1qaz2wsx3edc")):
        assert problem is not None and problem[0].isupper() and problem.endswith(".")
