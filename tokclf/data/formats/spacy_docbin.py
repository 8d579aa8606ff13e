"""spaCy `.spacy` files (DocBin, what `spacy convert` writes and `spacy train` reads).

The words are the Doc's tokens (whitespace tokens left out), the spans are `doc.ents`, offsets
into `doc.text`; each Doc is a record ("doc N"). Read through the `spacy` package (extra `spacy`)
with a blank vocabulary: no pipeline or model is needed.
"""

from __future__ import annotations

from pathlib import Path

from tokclf.core.errors import DataError
from tokclf.core.extras import require
from tokclf.data.spans import Span, SpanDoc


def read(path: Path, *, all_records: bool = False) -> list[SpanDoc]:
    require("spacy", feature="reading spaCy .spacy (DocBin) files")
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    try:
        docbin = DocBin().from_bytes(path.read_bytes())
        docs = list(docbin.get_docs(Vocab()))
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise DataError(f"not a readable spaCy DocBin: {type(exc).__name__}: {str(exc)[:120]}", where=str(path),
                        fix="write it with spacy.tokens.DocBin(...).to_disk(path) or `python -m spacy convert`.", code="E2040") from None
    except Exception as exc:  # noqa: BLE001 - srsly/msgpack raise their own types on broken bytes
        raise DataError(f"not a readable spaCy DocBin: {type(exc).__name__}", where=str(path),
                        fix="write it with spacy.tokens.DocBin(...).to_disk(path) or `python -m spacy convert`.", code="E2041") from None
    out = []
    for n, doc in enumerate(docs, 1):
        words = [(t.idx, t.idx + len(t.text)) for t in doc if not t.is_space and t.text]
        spans = [Span(e.start_char, e.end_char, e.label_, e.text, f"ent {i}") for i, e in enumerate(doc.ents, 1)]
        out.append(SpanDoc(doc.text, spans, f"{path}, doc {n}", n, words=words, meta={}))
    if not out:
        raise DataError("the DocBin holds no documents", where=str(path), fix="add Docs to it before saving.", code="E2042")
    return out
