"""Release text to HTML fragments: paragraphs, bullet lists, line breaks. Everything escaped.

Shared by the feed renderer and the HTML pages so both show the same structure.
"""

from __future__ import annotations

from html import escape

#: Markers that start a bullet line in the seeds (``  • Supporting ...``).
BULLETS = ("•", "◦", "▪", "‣", "·")


def _bullet(line: str) -> str | None:
    stripped = line.strip()
    for marker in BULLETS:
        if stripped.startswith(marker):
            return stripped[len(marker) :].strip()
    return None


def paragraph_html(paragraph: str) -> str:
    """One paragraph: runs of bullet lines become a list, other lines a ``<p>`` with breaks."""
    if "\n" not in paragraph and _bullet(paragraph) is None:
        return f"<p>{escape(paragraph.strip())}</p>"  # the common case, rendered per entry
    out: list[str] = []
    text: list[str] = []
    items: list[str] = []

    def flush_text() -> None:
        if text:
            out.append("<p>" + "<br/>".join(escape(t.strip()) for t in text) + "</p>")
            text.clear()

    def flush_items() -> None:
        if items:
            out.append("<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in paragraph.split("\n"):
        item = _bullet(line)
        if item is None:
            flush_items()
            text.append(line)
        else:
            flush_text()
            items.append(item)
    flush_text()
    flush_items()
    return "".join(out)


def body_html(paragraphs: tuple[str, ...]) -> str:
    """The whole body as an HTML fragment, one block per paragraph."""
    return "\n".join(paragraph_html(p) for p in paragraphs)
