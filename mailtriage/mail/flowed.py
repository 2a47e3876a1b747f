"""format=flowed (RFC 3676) text back into paragraphs, for parse.py (pure).

    sources → store raw → **parse** (this module unwraps flowed text) → guards → …

Thunderbird and Apple Mail send plain text as `format=flowed`: paragraphs
cut into lines of about 72 characters, each soft break marked by a trailing
space. Relayed or shown as it is, that text is hard-wrapped at 72 and ragged
in any window of another width; unwrapped, the reader's client wraps it.

The rules (RFC 3676 section 4): a line's quote depth is its count of leading
`>`; one space after them is space-stuffing and is removed; a line that
ends in a space is flowed and joins the next line of the same depth (with
`DelSp=yes` that space is deleted, not kept); the signature separator `-- `
is never flowed. Quoted paragraphs come back as `> text` per depth.

Why our own 40 lines rather than a package: PyPI's `formatflowed` (2.0.0,
2016) is the only decoder there, unmaintained for a decade; the RFC's
decoding fits on a screen.
"""

from __future__ import annotations

SIGNATURE = "-- "


def unflow(text: str, delsp: bool = False) -> str:
    """`text` (LF line ends) with its flowed lines joined into paragraphs."""
    out: list[str] = []
    paragraph: list[str] = []
    depth = 0
    for raw in text.split("\n"):
        line_depth, content = _unquote(raw)
        if paragraph and line_depth != depth:      # a depth change ends a paragraph, flowed or not
            out.append(_line(depth, paragraph))
            paragraph = []
        depth = line_depth
        flowed = content.endswith(" ") and content != SIGNATURE
        paragraph.append(content[:-1] if flowed and delsp else content)
        if not flowed:
            out.append(_line(depth, paragraph))
            paragraph = []
    if paragraph:
        out.append(_line(depth, paragraph))
    return "\n".join(out)


def _unquote(line: str) -> tuple[int, str]:
    depth = len(line) - len(line.lstrip(">"))
    content = line[depth:]
    return depth, content[1:] if content.startswith(" ") else content    # space-stuffing


def _line(depth: int, parts: list[str]) -> str:
    text = "".join(parts)
    if text != SIGNATURE:
        text = text.rstrip(" ")
    return (">" * depth + " " + text) if depth else text
