"""Every validation check, on tiny fixtures; CoNLL-2003's five stray I- tags on the real file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_data as shared  # noqa: E402  (tests/ is on sys.path)

from tokclf.core.columns import TAGS
from tokclf.core.errors import ValidationFailed
from tokclf.data import validation
from tokclf.data.ingest import load_labelled_data
from tokclf.data.schemes import is_iob2
from tokclf.data.validation import (
    MAX_PER_KIND,
    ValidationReport,
    stray_inside,
    validate_data,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
VAL = FIXTURES / "validation"
REPO = Path(__file__).resolve().parent.parent




def codes(problems) -> list[str]:
    return [p.code for p in problems]


def by_code(problems, code: str):
    return [p for p in problems if p.code == code]


# --- row checks ------------------------------------------------------------------------------------------


def test_length_mismatch_empty_sentence_and_empty_words():
    path = VAL / "problems.jsonl"
    data = load_labelled_data(str(path))
    _, report = validate_data(data)
    mismatch = by_code(report.errors, "length-mismatch")
    assert len(mismatch) == 1 and mismatch[0].where == f"{path}, line 1"
    assert "3 words but 2 tags" in mismatch[0].message
    empty = by_code(report.errors, "empty-sentence")
    assert [p.where for p in empty] == [f"{path}, line 2"]
    words = by_code(report.errors, "empty-word")
    assert [(p.where, "word 2" in p.message) for p in words] == [(f"{path}, line 3", True), (f"{path}, line 4", True)]
    assert all(p.split == "train" and p.severity == "error" for p in report.errors)
    assert not report.ok
    # line 5 is clean: nothing points at it
    assert not [p for p in report.errors if p.where.endswith("line 5")]


def test_raise_for_errors_lists_each_place():
    data = load_labelled_data(str(VAL / "problems.jsonl"))
    _, report = validate_data(data)
    with pytest.raises(ValidationFailed) as exc:
        report.raise_for_errors()
    assert len(exc.value.problems) == len(report.errors) == 4
    assert any("problems.jsonl, line 1: 3 words but 2 tags" in p for p in exc.value.problems)
    ValidationReport().raise_for_errors()  # no errors: no exception


def test_clean_data_has_no_problems_and_counts():
    data = load_labelled_data(str(FIXTURES / "conll_splits"), valid_split="dev")
    _, report = validate_data(data, valid_split="dev")
    assert report.errors == [] and report.ok
    s = report.stats["splits"]
    assert s["train"]["sentences"] == 2 and s["train"]["tokens"] == 4
    assert s["train"]["labels"] == {"O": 1, "B-ORG": 1, "B-PER": 1, "I-PER": 1}
    assert s["dev"]["labels"] == {"O": 1, "B-MISC": 1}
    assert report.stats["num_labels"] == 6 and report.stats["label_origin"] == "strings"


def test_cap_per_kind(tmp_path: Path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"tokens": ["a", "b"], "tags": ["O"]}\n' * (MAX_PER_KIND + 7), encoding="utf-8")
    _, report = validate_data(load_labelled_data(str(path)))
    mism = by_code(report.errors, "length-mismatch")
    assert len(mism) == MAX_PER_KIND + 1
    assert "7 more" in mism[-1].message and f"{MAX_PER_KIND + 7} in all" in mism[-1].message


# --- label ids --------------------------------------------------------------------------------------------


def test_label_gap_without_names():
    data = load_labelled_data(str(VAL / "gaps"))
    assert data.label_names is None
    _, report = validate_data(data)
    gaps = by_code(report.errors, "label-gap")
    assert len(gaps) == 1
    assert "2, 3 never occur" in gaps[0].message and "between 0 and 4" in gaps[0].message


def test_contiguous_ids_without_names_are_fine():
    data = load_labelled_data(str(FIXTURES / "ner_int.csv"))  # ids 0..5
    _, report = validate_data(data)
    assert "label-gap" not in codes(report.errors)


def test_ids_beyond_label_names():
    path = VAL / "int_tags.jsonl"
    data = load_labelled_data(str(path), label_names=str(FIXTURES / "labels.txt"))  # 7 names, a tag is 9
    _, report = validate_data(data)
    out = by_code(report.errors, "label-out-of-range")
    assert len(out) == 1 and out[0].where == f"{path}, line 2"
    assert "tag 4 is id 9" in out[0].message and "0..6" in out[0].message


def test_unseen_labels_in_test_are_a_warning():
    data = load_labelled_data(str(VAL / "bio"))
    _, report = validate_data(data)
    unseen = by_code(report.warnings, "unseen-label")
    assert len(unseen) == 1 and unseen[0].split == "test"
    msg = unseen[0].message
    assert "B-LOC" in msg and "I-LOC" in msg and "B-PER" not in msg
    assert f"{VAL / 'bio' / 'test.jsonl'}, line 1" in msg and f"{VAL / 'bio' / 'test.jsonl'}, line 2" in msg


# --- BIO ------------------------------------------------------------------------------------------------------


def test_stray_inside_positions():
    assert stray_inside(["I-PER", "O", "I-LOC", "I-LOC", "B-ORG", "I-PER", "B-X", "I-X"]) == [0, 2, 5]
    assert is_iob2(["O", "B-PER", "I-PER"]) and not is_iob2(["NOUN", "VERB"]) and not is_iob2(None)
    assert not is_iob2(["O", "S-PER", "B-PER"])


def test_bio_violations_reported_per_split():
    train = VAL / "bio" / "train.jsonl"
    data = load_labelled_data(str(VAL / "bio"))
    out, report = validate_data(data)
    assert out is data and report.repaired == 0
    bio = by_code(report.warnings, "bio-stray-inside")
    assert len(bio) == 1 and bio[0].split == "train" and bio[0].where == f"{train}, line 2"
    msg = bio[0].message
    assert msg.startswith("3 I-X tag(s)")
    assert f"{train}, line 2, word 1 'Blackburn': I-PER after sentence start" in msg
    assert f"{train}, line 3, word 2 'German': I-MISC after O" in msg
    assert f"{train}, line 4, word 2 'Commission': I-ORG after B-PER" in msg
    assert "repair_bio=True" in msg
    assert report.stats["splits"]["train"]["bio_violations"] == 3
    assert report.stats["splits"]["test"]["bio_violations"] == 0


def test_bio_repair_rewrites_to_b_and_adds_missing_b_label():
    data = load_labelled_data(str(VAL / "bio"))
    repaired, report = validate_data(data, repair_bio=True)
    assert report.repaired == 3
    names = repaired.label_names
    assert names[: len(data.label_names)] == data.label_names  # old ids unchanged
    assert names[len(data.label_names):] == ["B-MISC"]  # I-MISC had no B-MISC
    tags = [[names[t] for t in s] for s in repaired.splits["train"][TAGS]]
    assert tags == [
        ["B-PER", "I-PER", "O", "B-ORG", "O"],
        ["B-PER", "O"],
        ["O", "B-MISC", "I-MISC"],
        ["B-PER", "B-ORG"],
    ]
    assert repaired.splits["test"] is data.splits["test"]  # untouched split kept as is
    assert data.splits["train"][TAGS][1] != repaired.splits["train"][TAGS][1]  # input not mutated
    assert any("repair_bio" in n for n in repaired.notes)
    _, again = validate_data(repaired)
    assert "bio-stray-inside" not in codes(again.warnings)


def test_no_bio_check_for_pos_tags():
    data = load_labelled_data(str(FIXTURES / "sample.conllu"))
    _, report = validate_data(data, repair_bio=True)
    assert report.repaired == 0 and "bio_violations" not in report.stats["splits"]["train"]


# --- tokenizer --------------------------------------------------------------------------------------------------


def test_long_sentences_and_truncation_counts(tokenizer_dir: Path, tmp_path: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    assert tok.is_fast
    path = tmp_path / "t.jsonl"
    rows = [
        {"tokens": ["word"] * 20, "tags": ["O"] * 20},  # 20 subwords + 2 special = 22 > 16
        {"tokens": ["short", "one"], "tags": ["O", "O"]},
        {"tokens": ["x"] * 14, "tags": ["O"] * 14},  # exactly 16 with special tokens: fits
        {"tokens": ["ok", "\u200b"], "tags": ["O", "O"]},  # zero-width space: no subword
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    data = load_labelled_data(str(path))
    _, report = validate_data(data, tokenizer=tok, max_seq_length=16)
    sub = report.stats["splits"]["train"]["subwords"]
    assert sub["special_tokens"] == tok.num_special_tokens_to_add() == 2
    assert sub["sentences_over_max_seq_length"] == 1
    assert sub["words_cut_by_truncation"] == 6  # 20 words, 14 fit
    assert sub["longest_subword_length"] == 22
    assert sub["words_without_subwords"] == 1
    long = by_code(report.warnings, "long-sentences")
    assert len(long) == 1 and long[0].where == f"{path}, line 1"
    assert "overlapping windows" in long[0].message and "nothing is lost" in long[0].message
    lost = by_code(report.warnings, "words-without-subwords")
    assert len(lost) == 1 and f"{path}, line 4, word 2" in lost[0].message
    assert report.ok  # warnings only


def test_subword_counts_on_a_random_sample_of_a_large_split(tokenizer_dir: Path, tmp_path: Path, monkeypatch):
    """A split larger than SUBWORD_SAMPLE has its subwords counted on a seeded random sample, across
    batch boundaries (tokenize then tokenizes all of it); the report says it is a sample, and the
    same sample comes back on every run whatever the batch size."""
    from transformers import AutoTokenizer

    from tokclf.core import arrowio
    from tokclf.data import validation

    monkeypatch.setattr(validation, "SUBWORD_SAMPLE", 20)
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    rows = [{"tokens": ["word"] * 20, "tags": ["O"] * 20} for _ in range(60)]  # every sentence too long for 16
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    runs = []
    for batch in (7, 60):
        monkeypatch.setattr(arrowio, "BATCH_ROWS", batch)
        _, report = validate_data(load_labelled_data(str(path)), tokenizer=tok, max_seq_length=16)
        runs.append((report.stats["splits"]["train"]["subwords"], by_code(report.warnings, "long-sentences")))
    (sub, long), (again, _) = runs
    assert sub == again and 5 < sub["sampled_sentences"] < 40
    assert sub["sentences_over_max_seq_length"] == sub["sampled_sentences"]
    assert sub["words_cut_by_truncation"] == 6 * sub["sampled_sentences"] and sub["longest_subword_length"] == 22
    assert f"in a random sample of {sub['sampled_sentences']} of the 60 sentences" in long[0].message
    monkeypatch.setattr(validation, "SUBWORD_SAMPLE", 60)  # up to the sample size: every sentence, no sample key
    _, report = validate_data(load_labelled_data(str(path)), tokenizer=tok, max_seq_length=16)
    sub = report.stats["splits"]["train"]["subwords"]
    assert sub["sentences_over_max_seq_length"] == 60 and "sampled_sentences" not in sub
    assert by_code(report.warnings, "long-sentences")[0].where == f"{path}, line 1"


def test_report_json_round_trip(tmp_path: Path):
    data = load_labelled_data(str(VAL / "bio"))
    _, report = validate_data(data)
    target = tmp_path / "out" / "validation_report.json"
    report.write_json(target)
    loaded = json.loads(target.read_text(encoding="utf-8"))
    assert loaded == json.loads(json.dumps(report.to_dict()))
    assert loaded["num_warnings"] == len(report.warnings) and loaded["ok"] is True
    assert loaded["warnings"][0]["where"] and loaded["warnings"][0]["code"]
    assert [p.name for p in target.parent.iterdir()] == ["validation_report.json"]  # no temp file left


class CountingTokenizer:
    """The real tokenizer, recording the size of each batch it is called with."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        self.batches: list[int] = []

    def __call__(self, batch, **kw):
        self.batches.append(len(batch))
        return self._tokenizer(batch, **kw)

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


# --- real corpora ---------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_conll2003_reports_exactly_the_five_stray_tags(tokenizer_dir: Path, monkeypatch):
    from transformers import AutoTokenizer

    root = shared("conll2003")
    data = load_labelled_data(str(root), valid_split="validation")
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    counting = CountingTokenizer(tok)
    from tokclf.core.arrowio import BATCH_ROWS

    columns: list[int] = []
    real_batches = validation._batches

    def batches(ds):
        for cols in real_batches(ds):
            columns.append(len(cols[0]))
            yield cols

    monkeypatch.setattr(validation, "_batches", batches)
    _, report = validate_data(data, valid_split="validation", tokenizer=counting, max_seq_length=128)
    # Why it takes seconds, not minutes (bench/data_speed.py measures it), in bounded memory: each
    # split leaves Arrow in one pass of BATCH_ROWS-sentence batches, and the tokenizer is called once
    # per TOKENIZE_BATCH sentences, never per sentence.
    assert sorted(columns) == sorted([BATCH_ROWS, 4073, 3250, 3453])
    batch = validation.TOKENIZE_BATCH
    expected = [size for n in columns for size in [batch] * (n // batch) + [n % batch] * bool(n % batch)]
    assert sorted(counting.batches) == sorted(expected)
    assert report.errors == []
    bio = by_code(report.warnings, "bio-stray-inside")
    assert [(p.split, p.message.split(" ")[0]) for p in bio] == [("train", "5")]
    for word, line in [("Banana", 1347), ("Tomato", 1363), ("Bottle_Gourd", 1436), ("Banana", 1524), ("Spinach", 1538)]:
        assert f"train.txt, line {line}, word 5 '{word}': I-MISC after O" in bio[0].message
    assert report.stats["splits"]["train"]["tokens"] == 203832
    assert report.stats["splits"]["test"]["bio_violations"] == 0
    repaired, rep = validate_data(data, valid_split="validation", repair_bio=True)
    assert rep.repaired == 5 and repaired.label_names == data.label_names
