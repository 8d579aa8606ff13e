"""Split words of a raw text into sentences, by rules (no model, no download, no extra package).

Used to cut span annotation documents (a whole abstract, a Label Studio task) into sentence
records for training and prediction (`span_records: sentence`, tokclf.data.spans). It works on
the words of `tokclf.text.words.split_words` and their character offsets, so a sentence is a run
of whole words and every offset still points into the original text.

A sentence ends after a word `w` when one of these holds:

1. the gap between `w` and the next word holds a line break (titles, headings, list items and
   paragraphs in annotation exports are lines; hard-wrapped prose is the exception this accepts);
2. `w` is `.`, `!`, `?`, `…` or a run of them (`?!`, `...`), optionally followed by closing
   quotes/brackets (`.)` `."`), then whitespace, and the next word starts with an upper-case
   letter, a digit or an opening quote/bracket;
   except for `.` after an abbreviation: a word in `ABBREVIATIONS` (`Dr.`, `e.g.`, `Fig.`,
   `et al.`, case-insensitive), a single letter (initials `J. Smith`, `U.S.`), a word glued to
   an earlier `.` (`e.g.`, `i.e.`, `U.S.`), or a number with a number after it (`0. 63`, a
   decimal written with a space);
3. `w` is an ideographic full stop / exclamation / question mark (`。！？`), no space needed.

A `.` with no whitespace after it never ends a sentence, so decimals (`3.5`), versions (`2.0.1`),
URLs and `19p13.3` stay whole. A lower-case word after `.` continues the sentence (`approx. three`).
Callers that know entity spans drop every boundary inside one (tokclf.data.spans never cuts a
mention).
"""

from __future__ import annotations

from collections.abc import Sequence

# Abbreviations after which "." usually does not end a sentence (lower-cased, without the dot).
# Words that as often end a sentence ("etc", "Inc", "Ltd") are left out: splitting there is the
# smaller error, since a split sentence still trains (a joined one only makes a longer record).
ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "rev", "gen", "col", "lt", "sgt", "capt", "gov",
    "sen", "rep", "hon", "vs", "v", "al", "fig", "figs", "eq", "eqs", "ref", "refs", "no", "nos", "vol", "vols",
    "pp", "p", "ch", "sec", "ca", "approx", "cf", "viz", "resp", "dept", "univ", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "wed", "thu", "fri", "sat", "sun",
    "incl", "esp", "nr", "tel", "op", "cit", "ed", "eds", "et",
})
TERMINALS = frozenset(".!?…")
IDEOGRAPHIC = frozenset("。！？")
CLOSING = frozenset(")]}\"'”’»")
OPENING = frozenset("([{\"'“‘«¿¡")


def _starts_sentence(word: str) -> bool:
    first = word[0]
    return first.isupper() or first.isdigit() or first in OPENING


def _continues(words: Sequence[str], offsets: Sequence[tuple[int, int]], dot: int) -> bool:
    """Whether the sentence goes on after the `.` at `dot`: an abbreviation before it, or a number
    on both sides ("0. 63": a decimal written with a space, as PDF extraction and some corpora do;
    a sentence seldom ends on a number and the next starts with one)."""
    if dot >= 1 and dot + 1 < len(words) and words[dot - 1].isdigit() and words[dot + 1].isdigit() \
            and offsets[dot - 1][1] == offsets[dot][0]:
        return True
    return _abbreviation_before(words, offsets, dot)


def _abbreviation_before(words: Sequence[str], offsets: Sequence[tuple[int, int]], dot: int) -> bool:
    """Whether the `.` at word index `dot` closes an abbreviation (see the module docstring)."""
    if dot == 0 or offsets[dot - 1][1] != offsets[dot][0]:
        return False  # "word ." with a space before the dot: a plain full stop
    prev = words[dot - 1]
    if prev.lower() in ABBREVIATIONS or (len(prev) == 1 and prev.isalpha()):
        return True
    # glued to an earlier dot: "e.g", "U.S" (the word before `prev` is a "." touching it)
    return dot >= 2 and words[dot - 2] == "." and offsets[dot - 2][1] == offsets[dot - 1][0]


def sentence_starts(text: str, offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Word indices where sentences start (0 first; empty for no words), by the module's rules.

    offsets: each word's [start, end) in `text`, in text order (split_words' second result).
    """
    n = len(offsets)
    if not n:
        return []
    words = [text[s:e] for s, e in offsets]
    starts = [0]
    i = 0
    while i < n - 1:
        w = words[i]
        if "\n" in text[offsets[i][1]:offsets[i + 1][0]]:
            starts.append(i + 1)
        elif w in TERMINALS or w in IDEOGRAPHIC:
            end = i  # the run of terminals and closing marks touching each other: "?!", '."', "..."
            while end + 1 < n and offsets[end + 1][0] == offsets[end][1] and (
                    words[end + 1] in TERMINALS or words[end + 1] in CLOSING):
                end += 1
            if end + 1 < n:
                gap = text[offsets[end][1]:offsets[end + 1][0]]
                if "\n" in gap or w in IDEOGRAPHIC or (
                        gap and _starts_sentence(words[end + 1])
                        and not (w == "." and end == i and _continues(words, offsets, i))):
                    starts.append(end + 1)
            i = end
        i += 1
    return starts


def sentence_ranges(text: str, offsets: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """[first, last) word ranges of the sentences (see sentence_starts)."""
    starts = sentence_starts(text, offsets)
    return list(zip(starts, starts[1:] + [len(offsets)]))
