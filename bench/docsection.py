"""Rewrite one marked section of a Markdown file in place (benchmark scripts keep their tables
current in docs/ this way): the text between `begin` and `end` is replaced by `section` (which
carries the markers itself); without the markers the section is appended under `heading`.
Written to a temporary file and moved into place, so a failed run leaves the old file intact."""

from __future__ import annotations

import os
import re
from pathlib import Path


def write_section(doc: Path, begin: str, end: str, section: str, *, heading: str = "") -> None:
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Inference\n"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: section, text, flags=re.DOTALL)
    else:
        text = text.rstrip("\n") + "\n\n" + heading + section + "\n"
    tmp = doc.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, doc)
