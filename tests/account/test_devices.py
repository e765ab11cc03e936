"""The small user-agent parser and the relative times on the sessions page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.account.devices import device_name, relative_time, utc_label
from tests.account.helpers import CHROME_MAC, FIREFOX, SAFARI_IOS


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (CHROME_MAC, "Chrome 126 on macOS"),
        (FIREFOX, "Firefox 128 on Linux"),
        (SAFARI_IOS, "Safari 17 on iOS"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
            "Safari/537.36 Edg/126.0.2592.87",
            "Edge 126 on Windows",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 "
            "Mobile Safari/537.36",
            "Chrome 126 on Android",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0 "
            "Mobile/15E148 Safari/604.1",
            "Chrome 126 on iPadOS",
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 Chrome/125.0.0.0 Safari/537.36",
            "Chrome 125 on ChromeOS",
        ),
        ("curl/8.5.0", "curl 8"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "Unknown browser on Windows"),
        ("", "Unknown device"),
    ],
)
def test_device_names(agent: str, expected: str) -> None:
    assert device_name(agent) == expected


def test_relative_and_absolute_times() -> None:
    now = datetime(2026, 5, 30, 12, 0, tzinfo=UTC)
    assert relative_time(now - timedelta(seconds=20), now) == "just now"
    assert relative_time(now - timedelta(minutes=1), now) == "1 minute ago"
    assert relative_time(now - timedelta(minutes=59), now) == "59 minutes ago"
    assert relative_time(now - timedelta(hours=3), now) == "3 hours ago"
    assert relative_time(now - timedelta(days=1, hours=2), now) == "yesterday"
    assert relative_time(now - timedelta(days=5), now) == "5 days ago"
    assert relative_time(now - timedelta(days=30), now) == "4 weeks ago"
    assert utc_label(now - timedelta(minutes=5)) == "2026-05-30 11:55 UTC"
