"""Times in the person's own zone: their profile's choice, else their browser's (a cookie marid.js sets), else UTC.

Templates format every moment with the ``localtime`` filter (``{{ row.at | localtime }}``, ``| localtime("date")``)
or the ``when`` macro of ``components/time.html`` (a ``<time>`` element whose title gives UTC as well), never with
``strftime``: the filter reads the zone of the request being rendered.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.requests import Request

COOKIE = "marid_tz"
FORMATS = {
    "datetime": "%Y-%m-%d %H:%M",
    "seconds": "%Y-%m-%d %H:%M:%S",
    "date": "%Y-%m-%d",
    "time": "%H:%M:%S",
    "short": "%H:%M",
    "full": "%Y-%m-%d %H:%M %Z",
}


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name this system knows, sorted (the profile page's choices)."""
    return tuple(
        sorted(name for name in available_timezones() if "/" in name and not name.startswith(("Etc/", "SystemV/")))
    )


@lru_cache(maxsize=512)
def zone(name: str) -> tzinfo | None:
    """The zone called ``name``, or None for a name that is not one (never an error: names come from cookies)."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_of(request: Request, chosen: str = "") -> tzinfo:
    """The zone to show times in for this request: ``chosen`` (the profile's), the browser's, or UTC."""
    return zone(chosen) or zone(unquote(request.cookies.get(COOKIE, ""))) or UTC


def zone_label(found: tzinfo) -> str:
    return "UTC" if found is UTC else str(getattr(found, "key", found))


def format_moment(moment: datetime | None, found: tzinfo, style: str = "datetime") -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:  # a naive time from the database is UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(found).strftime(FORMATS.get(style, style))


@pass_context
def localtime(context: Context, moment: datetime | None, style: str = "datetime") -> str:
    """The Jinja filter: ``moment`` in the zone of the page's reader (``time_zone`` in the template context)."""
    found: Any = context.get("time_zone")
    return format_moment(moment, found if isinstance(found, tzinfo) else UTC, style)


def utc(moment: datetime | None, style: str = "full") -> str:
    """The same moment in UTC (titles, exports): ``2026-05-30 14:02 UTC``."""
    return format_moment(moment, UTC, style)
