"""Split raw text into words, keeping each word's character offsets into the original string.

The rule (the same for every model, so outputs do not depend on the tokenizer):

1. Whitespace (`str.isspace()`: spaces, tabs, newlines, no-break and other Unicode spaces)
   separates words and is never part of one.
2. Every punctuation character (Unicode category P*: `. , ; : ! ? ' " ( ) - – — « » ¿ 、 。`...),
   every ASCII symbol (`$ + < = > ^ `` | ~`) and every CJK ideograph is a word on its own.
3. Any other run of characters (letters, digits, marks, other symbols such as `€` `°` or emoji)
   is one word.
4. Invisible format and control characters (Unicode Cf/Cc that are not whitespace: zero-width
   space, zero-width joiner, soft hyphen, BOM) stay inside a word when they sit between two of
   its characters (`hy\\u00adphen` is one word) and are skipped everywhere else.

So `"Apple Inc., (U.S.)"` gives `Apple` `Inc` `.` `,` `(` `U` `.` `S` `.` `)`: punctuation glued to
a word is split off, and abbreviations are split at their dots. This is the split BERT-style
tokenizers make before WordPiece, so on those models each word is exactly one pre-token of what
`transformers.pipeline` sees; entity text is always cut from the original string by offsets, so an
entity over `U . S .` comes back as `"U.S."`.

Offsets are Python string indices (Unicode code points), end exclusive:
`text[start:end] == word` for every word. (A JavaScript client counting UTF-16 units sees the
same offsets unless the text holds characters outside the Basic Multilingual Plane, e.g. emoji.)
"""

from __future__ import annotations

import functools
import unicodedata

# Character classes.
_SPACE, _IGNORABLE, _SINGLE, _WORD = 0, 1, 2, 3

_ASCII_SYMBOLS = frozenset("$+<=>^`|~")


def _is_cjk(cp: int) -> bool:
    # CJK Unified Ideographs and their extensions, compatibility ideographs (the blocks BERT's
    # BasicTokenizer splits one by one).
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F
    )


@functools.lru_cache(maxsize=65536)
def char_class(ch: str) -> int:
    """0 whitespace, 1 ignorable (format/control), 2 a word by itself, 3 part of a word."""
    if ch.isspace():
        return _SPACE
    category = unicodedata.category(ch)
    if category in ("Cc", "Cf"):
        return _IGNORABLE
    if category[0] == "P" or ch in _ASCII_SYMBOLS or _is_cjk(ord(ch)):
        return _SINGLE
    return _WORD


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Words of `text` and their (start, end) offsets, by the rule in the module docstring.

    `text[start:end] == word` for every pair; words are in text order and never overlap.
    """
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    n = len(text)
    i = 0
    while i < n:
        kind = char_class(text[i])
        if kind == _SPACE or kind == _IGNORABLE:
            i += 1
            continue
        if kind == _SINGLE:
            words.append(text[i])
            spans.append((i, i + 1))
            i += 1
            continue
        j = i + 1
        while j < n:
            kind = char_class(text[j])
            if kind == _WORD:
                j += 1
                continue
            if kind == _IGNORABLE:
                k = j + 1
                while k < n and char_class(text[k]) == _IGNORABLE:
                    k += 1
                if k < n and char_class(text[k]) == _WORD:
                    j = k + 1
                    continue
            break
        words.append(text[i:j])
        spans.append((i, j))
        i = j
    return words, spans


def join_words(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Pre-split words -> (words joined by single spaces, each word's offsets in that string)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for w in words:
        spans.append((pos, pos + len(w)))
        pos += len(w) + 1
    return " ".join(words), spans
