"""The README's generated blocks: text between HTML-comment markers, replaced in place."""

from __future__ import annotations

from pathlib import Path

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
DIFFUSERS_START = "<!-- bench-diffusers:start -->"
DIFFUSERS_END = "<!-- bench-diffusers:end -->"


def update_readme(readme: Path, block: str, markers: tuple[str, str] = (README_START, README_END)) -> None:
    """Replace the text between the ``markers`` (``<!-- bench:start -->`` and ``<!-- bench:end -->``) in ``readme``.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    text = readme.read_text()
    start, end = text.find(markers[0]), text.find(markers[1])
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no {markers[0]} ... {markers[1]} block to fill")
    readme.write_text(text[: start + len(markers[0])] + "\n" + block + text[end:])
