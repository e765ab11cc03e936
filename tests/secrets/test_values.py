"""Secret names, values and the masked preview (pure rules)."""

from __future__ import annotations

import pytest

from app.errors import Invalid
from app.secrets.values import HIDDEN, VALUE_MAX, clean_description, clean_name, clean_value, masked_preview


@pytest.mark.parametrize("name", ["A", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "X9", "A" * 64])
def test_good_names(name: str) -> None:
    assert clean_name(f" {name} ") == name


@pytest.mark.parametrize(
    "name",
    ["", "github_token", "9LIVES", "_X", "A-B", "A B", "A" * 65, "ÄPFEL", "PATH", "HOME", "MARID_TOKEN", "LD_PRELOAD"],
)
def test_bad_names(name: str) -> None:
    with pytest.raises(Invalid) as refused:
        clean_name(name)
    assert set(refused.value.errors) == {"name"}


def test_values() -> None:
    assert clean_value("  ghp_abc \n") == "ghp_abc"
    key = "-----BEGIN KEY-----\r\nabc\r\n-----END KEY-----"
    assert clean_value(key) == "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"
    for bad in ("", "   \n", "x" * (VALUE_MAX + 1), "a\x00b"):
        with pytest.raises(Invalid) as refused:
            clean_value(bad)
        assert set(refused.value.errors) == {"value"}
        assert bad.strip() == "" or bad[:5] not in refused.value.message  # the value is never quoted


def test_descriptions() -> None:
    assert clean_description("  Deploys   to prod ") == "Deploys to prod"
    for bad in ("two\nlines", "d" * 201):
        with pytest.raises(Invalid):
            clean_description(bad)


@pytest.mark.parametrize("length", [1, 5, 15, 16, 20, 27, 28, 40, 100, 5000])
def test_the_preview_never_shows_more_than_a_quarter(length: int) -> None:
    value = "".join(chr(ord("a") + i % 26) for i in range(length))
    preview = masked_preview(value)
    shown = len(preview.replace("…", "").replace("•", ""))
    assert shown * 4 <= length
    if length < 16:
        assert preview == HIDDEN
    if length >= 28:
        assert preview == f"{value[:3]}…{value[-4:]}"


def test_the_preview_ignores_blank_space() -> None:
    key = "-----BEGIN KEY-----\n" + "Q" * 40 + "\n-----END KEY-----\n"
    assert masked_preview(key) == "---…----"
