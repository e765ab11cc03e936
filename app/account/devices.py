"""Friendly names for sessions: "Firefox 128 on Windows" from a user-agent string, and "5 minutes ago".

A deliberately small parser: it only has to tell a person which of their own browsers a session is. The
order of the checks matters because browsers claim each other's names (Edge says "Chrome" and "Safari",
Chrome says "Safari").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# (pattern, name); the first match wins. Group 1, when present, is the version.
_BROWSERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bEdg(?:e|A|iOS)?/(\d+)"), "Edge"),
    (re.compile(r"\bOPR/(\d+)"), "Opera"),
    (re.compile(r"\bSamsungBrowser/(\d+)"), "Samsung Internet"),
    (re.compile(r"\bVivaldi/(\d+)"), "Vivaldi"),
    (re.compile(r"\b(?:Firefox|FxiOS)/(\d+)"), "Firefox"),
    (re.compile(r"\bHeadlessChrome/(\d+)"), "Headless Chrome"),
    (re.compile(r"\b(?:Chrome|CriOS)/(\d+)"), "Chrome"),
    (re.compile(r"\bVersion/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/"), "Safari"),
    (re.compile(r"\bcurl/(\d+)"), "curl"),
    (re.compile(r"\bpython-(?:httpx|requests)/(\d+)"), "Python script"),
    (re.compile(r"^testclient$"), "Test client"),
]

_SYSTEMS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bWindows Phone\b"), "Windows Phone"),
    (re.compile(r"\bWindows\b"), "Windows"),
    (re.compile(r"\biPad\b"), "iPadOS"),
    (re.compile(r"\b(?:iPhone|iPod)\b"), "iOS"),
    (re.compile(r"\bCrOS\b"), "ChromeOS"),
    (re.compile(r"\bAndroid\b"), "Android"),
    (re.compile(r"\bMac OS X\b|\bMacintosh\b"), "macOS"),
    (re.compile(r"\bLinux\b|\bX11\b"), "Linux"),
]


def device_name(user_agent: str) -> str:
    """ "Chrome 126 on macOS", "Firefox on Linux", "Unknown browser on Windows", or "Unknown device"."""
    agent = user_agent.strip()
    browser = None
    for pattern, name in _BROWSERS:
        match = pattern.search(agent)
        if match:
            version = match.group(1) if match.groups() else None
            browser = f"{name} {version}" if version else name
            break
    system = next((name for pattern, name in _SYSTEMS if pattern.search(agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser:
        return browser
    if system:
        return f"Unknown browser on {system}"
    return "Unknown device"


def relative_time(moment: datetime, now: datetime | None = None) -> str:
    """How long ago ``moment`` was, in words: "just now", "5 minutes ago", "yesterday", "3 weeks ago"."""
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 60:
        return "just now"
    minutes = seconds // 60
    if minutes < 60:
        return _ago(minutes, "minute")
    hours = minutes // 60
    if hours < 24:
        return _ago(hours, "hour")
    days = hours // 24
    if days == 1:
        return "yesterday"
    if days < 14:
        return _ago(days, "day")
    return _ago(days // 7, "week")


def _ago(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'} ago"


def utc_label(moment: datetime) -> str:
    """An unambiguous absolute time: "2026-05-30 14:02 UTC"."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
