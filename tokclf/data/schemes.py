"""Tagging schemes: which label sets describe spans, and how a tag reads (prefix, type).

The one home for this knowledge: validation (BIO checks and repair), scoring (seqeval entity
level), entity decoding in predict and constrained (BIO-valid) decoding all read tags here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

OUTSIDE = "O"
# B-X / I-X (IOB1, IOB2), E-X / S-X (IOBES), L-X / U-X (BILOU): a prefix, a dash and a type.
_PREFIXED = re.compile(r"^[BIESLU]-.+$")


def is_bio(label_names: Sequence[str] | None) -> bool:
    """True when the labels describe spans: every label is "O" or a B-/I-/E-/S-/L-/U- prefix plus
    a type, and at least one is not "O". POS tags, chunk-free tag sets and unnamed ids are not."""
    if not label_names:
        return False
    if not all(name == OUTSIDE or _PREFIXED.match(name) for name in label_names):
        return False
    return any(name != OUTSIDE for name in label_names)


def is_iob2(label_names: Sequence[str] | None) -> bool:
    """IOB2/BIO labels only: every name is O, B-X or I-X, and some are B-/I- (what BIO repair
    understands; IOBES/BILOU sets are not)."""
    if not label_names:
        return False
    tagged = [n for n in label_names if n != OUTSIDE]
    return bool(tagged) and all(n[:2] in ("B-", "I-") and len(n) > 2 for n in tagged)


def as_iobes(tag: str) -> str:
    """A tag as seqeval's default mode reads it: BILOU's L- (last) and U- (unit) are E- and S-."""
    if tag.startswith("L-"):
        return "E-" + tag[2:]
    if tag.startswith("U-"):
        return "S-" + tag[2:]
    return tag


def entity_types(label_names: Sequence[str]) -> list[str]:
    """Entity types in label order ("B-PER", "I-PER", "B-LOC" -> ["PER", "LOC"])."""
    return list(dict.fromkeys(n[2:] for n in label_names if n != OUTSIDE))
