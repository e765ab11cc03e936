"""One mail, two parts from the same content: a plain-text part and a simple HTML part with one clear button.

A message is a list of blocks (paragraphs, one button, a list, small print). The text part says the button as
its label and the link on a line of its own; the HTML part is a single centred column with inline styles (mail
clients drop style sheets) and no images or scripts. Every value is escaped here, so a name like
``<b>Eve</b>`` reaches an inbox as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup, escape


@dataclass(frozen=True)
class Button:
    label: str
    url: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Small:
    """Small print, under the button: how long a link works, why the mail came, what to do if it was not you."""

    text: str


Block = str | Button | Bullets | Small


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    html: str
    # The first words an inbox shows after the subject.
    preview: str = field(default="")


# Colours that read on light and dark mail clients alike; the button passes contrast with white text.
_ACCENT = "#4b3fd6"
_MUTED = "#5c5d73"
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif"


def build(subject: str, heading: str, blocks: list[Block], *, footer: str) -> Mail:
    """The two parts of a mail: ``heading`` on top, then ``blocks``, then ``footer`` (why this mail came)."""
    return Mail(subject, _text(heading, blocks, footer), _html(subject, heading, blocks, footer), _preview(blocks))


def _preview(blocks: list[Block]) -> str:
    return next((block for block in blocks if isinstance(block, str)), "")[:140]


def _text(heading: str, blocks: list[Block], footer: str) -> str:
    parts = [heading]
    for block in blocks:
        if isinstance(block, Button):
            parts.append(f"{block.label}:\n{block.url}")
        elif isinstance(block, Bullets):
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Small):
            parts.append(block.text)
        else:
            parts.append(block)
    parts.append(f"— Marid\n{footer}")
    return "\n\n".join(parts) + "\n"


def _html(subject: str, heading: str, blocks: list[Block], footer: str) -> str:
    rows: list[Markup] = []
    for block in blocks:
        if isinstance(block, Button):
            rows.append(
                Markup(
                    '<p style="margin:24px 0"><a href="{url}" style="display:inline-block;background:{accent};'
                    "color:#ffffff;text-decoration:none;font-weight:600;padding:12px 22px;border-radius:8px;"
                    '{font}">{label}</a></p>'
                    '<p style="margin:0 0 16px;color:{muted};font-size:13px;word-break:break-all">'
                    'Or open this link: <a href="{url}" style="color:{accent}">{url}</a></p>'
                ).format(url=block.url, label=block.label, accent=_ACCENT, muted=_MUTED, font=_FONT)
            )
        elif isinstance(block, Bullets):
            items = Markup("").join(Markup("<li>{}</li>").format(item) for item in block.items)
            rows.append(Markup('<ul style="margin:0 0 16px;padding-left:20px">{}</ul>').format(items))
        elif isinstance(block, Small):
            rows.append(Markup('<p style="margin:0 0 16px;color:{};font-size:13px">{}</p>').format(_MUTED, block.text))
        else:
            rows.append(Markup('<p style="margin:0 0 16px">{}</p>').format(block))
    body = Markup("").join(rows)
    return str(
        Markup(
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="color-scheme" content="light only"><title>{subject}</title></head>'
            '<body style="margin:0;padding:0;background:#f6f6fa">'
            '<div style="display:none;max-height:0;overflow:hidden">{preview}</div>'
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f6f6fa">'
            '<tr><td align="center" style="padding:24px 12px">'
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px;'
            'background:#ffffff;border:1px solid #e2e2ec;border-radius:10px">'
            '<tr><td style="padding:28px 28px 8px;{font};font-size:15px;line-height:1.5;color:#1c1c28">'
            '<p style="margin:0 0 20px;font-weight:700;font-size:16px;color:{accent}">Marid</p>'
            '<h1 style="margin:0 0 16px;font-size:20px;line-height:1.3">{heading}</h1>'
            "{body}"
            "</td></tr>"
            '<tr><td style="padding:0 28px 24px;{font};font-size:12px;line-height:1.5;color:{muted}">'
            '<p style="margin:16px 0 0;border-top:1px solid #e2e2ec;padding-top:16px">{footer}</p>'
            "</td></tr></table></td></tr></table></body></html>"
        ).format(
            subject=subject,
            preview=_preview(blocks),
            heading=heading,
            body=body,
            footer=footer,
            font=Markup(_FONT),
            accent=_ACCENT,
            muted=_MUTED,
        )
    )


__all__ = ["Block", "Bullets", "Button", "Mail", "Small", "build", "escape"]
