"""tokenize_split / merge_word_*: real MiniLM WordPiece tokenizer, tiny max_seq_length so windows kick in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tokclf.text.alignment import IGNORE, build_continuation_map
from tokclf.text.features import (
    merge_word_predictions,
    merge_word_probabilities,
    tokenize_split,
)

NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG"]
MAX_LEN = 12  # 10 pieces + [CLS] [SEP]
STRIDE = 3

SENTENCES = [
    (["Peter", "Blackburn"], ["B-PER", "I-PER"]),
    (["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
     ["B-MISC", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]),
    # Long: several windows, multi-piece words (dates split into 5 pieces), entity across a cut.
    (["BRUSSELS", "1996-08-22", "The", "European", "Commission", "said", "on", "Thursday", "it", "disagreed",
      "with", "German", "advice", "to", "consumers", "to", "shun", "British", "lamb", "until", "scientists",
      "determine", "whether", "mad", "cow", "disease", "can", "be", "transmitted", "to", "sheep", "."],
     ["B-LOC", "O", "O", "B-ORG", "I-ORG", "O", "O", "O", "O", "O", "O", "B-MISC", "O", "O", "O", "O", "O",
      "B-MISC", "O", "O", "O", "O", "O", "O", "O", "O", "O", "O", "O", "O", "O", "O"]),
    ([], []),  # empty sentence: one feature, no words
    # A word longer than the whole budget (truncated inside itself) and a word with no piece at all.
    (["Werner", "1996-08-22-1997-09-23-1998", "\u200b", "Zwingmann", "lives", "in", "Bonn"],
     ["B-PER", "O", "O", "B-PER", "O", "O", "B-LOC"]),
    (["Nadim", "Ladki", "AL-AIN", ",", "United", "Arab", "Emirates", "1996-12-06"],
     ["B-PER", "I-PER", "B-LOC", "O", "B-LOC", "I-LOC", "I-LOC", "O"]),
]


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer_dir))


@pytest.fixture(scope="module")
def dataset():
    import datasets

    return datasets.Dataset.from_dict({
        "tokens": [s for s, _ in SENTENCES],
        "tags": [[NAMES.index(t) for t in tags] for _, tags in SENTENCES],
        "line": list(range(1, len(SENTENCES) + 1)),
        "document": [0] * len(SENTENCES),
    })


def _features(dataset, tokenizer, strategy: str = "first", **kw):
    args = dict(max_seq_length=MAX_LEN, stride=STRIDE, strategy=strategy, label_names=NAMES)
    args.update(kw)
    return tokenize_split(dataset, tokenizer, **args)


def _padded(rows: list[list[int]], fill: int = -100) -> np.ndarray:
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), fill, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _gold(dataset) -> list[list[int]]:
    return list(dataset["tags"])


def test_columns_and_no_padding(dataset, tokenizer) -> None:
    f = _features(dataset, tokenizer)
    for col in ("input_ids", "attention_mask", "token_type_ids", "labels", "example", "word_ids",
                "window_start", "window_end", "length"):
        assert col in f.column_names
    for row in f:
        n = len(row["input_ids"])
        assert n == row["length"] <= MAX_LEN
        assert len(row["attention_mask"]) == len(row["labels"]) == len(row["word_ids"]) == n
        assert set(row["attention_mask"]) == {1}
        assert tokenizer.pad_token_id not in row["input_ids"]
        assert row["input_ids"][0] == tokenizer.cls_token_id and row["input_ids"][-1] == tokenizer.sep_token_id
    assert "labels" not in _features(dataset, tokenizer, with_labels=False).column_names


def test_windows_cover_every_word(dataset, tokenizer) -> None:
    f = _features(dataset, tokenizer)
    examples = f["example"]
    assert examples == sorted(examples) and set(examples) == set(range(len(SENTENCES)))
    assert examples.count(2) >= 3, "the long sentence must be windowed"
    for ex, (words, _) in enumerate(SENTENCES):
        rows = [r for r in f if r["example"] == ex]
        seen = set()
        for r in rows:
            ids = {w for w in r["word_ids"] if w >= 0}
            # word_ids are sentence-level and exactly the window's words.
            assert ids == set(range(r["window_start"], r["window_end"]))
            seen |= ids
        assert seen == set(range(len(words)))
        if len(rows) > 1:
            for a, b in zip(rows, rows[1:]):
                # Windows overlap (stride > 0), except next to a lone word longer than the budget.
                lone = b["window_end"] - b["window_start"] == 1 or a["window_end"] - a["window_start"] == 1
                assert b["window_start"] < a["window_end"] or (ex == 4 and lone)


@pytest.mark.parametrize("strategy", ["first", "all"])
def test_pieces_spell_their_words_and_labels_align(dataset, tokenizer, strategy: str) -> None:
    f = _features(dataset, tokenizer, strategy)
    cont = build_continuation_map(NAMES)
    normalize = tokenizer.backend_tokenizer.normalizer.normalize_str
    truncated = 0
    for row in f:
        words, tags = SENTENCES[row["example"]][0], [NAMES.index(t) for t in SENTENCES[row["example"]][1]]
        tokens = tokenizer.convert_ids_to_tokens(row["input_ids"])
        by_word: dict[int, list[int]] = {}
        for j, w in enumerate(row["word_ids"]):
            if w < 0:
                assert row["labels"][j] == IGNORE
                assert tokens[j] in (tokenizer.cls_token, tokenizer.sep_token)
            else:
                by_word.setdefault(w, []).append(j)
        for w, positions in by_word.items():
            assert positions == list(range(positions[0], positions[-1] + 1)), "a word's pieces are contiguous"
            spelled = "".join(tokens[j].removeprefix("##") for j in positions)
            expected = normalize(words[w]).replace(" ", "")
            if not expected:
                assert spelled == tokenizer.unk_token  # the zero-piece word is fed as [UNK]
            elif spelled != expected:
                # Only the oversized word may be cut, and only at its end.
                assert expected.startswith(spelled) and len(positions) == MAX_LEN - 2
                truncated += 1
            labels = [row["labels"][j] for j in positions]
            if strategy == "first":
                assert labels == [tags[w]] + [IGNORE] * (len(positions) - 1)
            else:
                assert labels == [tags[w]] + [cont.get(tags[w], tags[w])] * (len(positions) - 1)
    assert truncated == 1


def test_all_strategy_continues_b_with_i(dataset, tokenizer) -> None:
    f = _features(dataset, tokenizer, "all")
    row = next(r for r in f if r["example"] == 5)  # "AL-AIN" (B-LOC) -> al - ain
    tokens = tokenizer.convert_ids_to_tokens(row["input_ids"])
    pieces = [(tokens[j], NAMES[row["labels"][j]]) for j, w in enumerate(row["word_ids"]) if w == 2]
    assert pieces == [("al", "B-LOC"), ("-", "I-LOC"), ("ain", "I-LOC")]
    # An I- word keeps I- on every piece.
    pieces = [(tokens[j], NAMES[row["labels"][j]]) for j, w in enumerate(row["word_ids"]) if w == 1]
    assert [n for _, n in pieces] == ["I-PER"] * len(pieces)


def test_fitting_sentences_match_plain_tokenizer_call(dataset, tokenizer) -> None:
    f = _features(dataset, tokenizer)
    for row in f:
        words = SENTENCES[row["example"]][0]
        if row["window_start"] == 0 and row["window_end"] == len(words) and "\u200b" not in words:
            ref = tokenizer(words, is_split_into_words=True)
            assert row["input_ids"] == ref["input_ids"]
            assert row["token_type_ids"] == ref["token_type_ids"]
            assert row["word_ids"] == [-1 if w is None else w for w in ref.word_ids()]


@pytest.mark.parametrize("strategy", ["first", "all"])
def test_merge_gold_labels_reproduces_word_tags(dataset, tokenizer, strategy: str) -> None:
    f = _features(dataset, tokenizer, strategy)
    preds = _padded(f["labels"])
    assert merge_word_predictions(f, preds, len(dataset)) == _gold(dataset)


def test_merge_on_shuffled_features(dataset, tokenizer) -> None:
    # Predictions follow the features' row order, whatever it is.
    f = _features(dataset, tokenizer).shuffle(seed=3)
    assert merge_word_predictions(f, _padded(f["labels"]), len(dataset)) == _gold(dataset)


def test_merge_picks_window_where_word_is_farthest_from_a_cut(dataset, tokenizer) -> None:
    f = _features(dataset, tokenizer)
    rows = list(f)
    # Every piece "predicts" its row index: the merged value says which window was chosen.
    preds = _padded([[i] * r["length"] for i, r in enumerate(rows)])
    merged = merge_word_predictions(f, preds, len(dataset))
    far = 10**9
    for ex, (words, _) in enumerate(SENTENCES):
        for w in range(len(words)):
            best, best_score = None, -1
            for i, r in enumerate(rows):
                if r["example"] != ex or not r["window_start"] <= w < r["window_end"]:
                    continue
                left = w - r["window_start"] if r["window_start"] > 0 else far
                right = r["window_end"] - 1 - w if r["window_end"] < len(words) else far
                if min(left, right) > best_score:
                    best, best_score = i, min(left, right)
            assert merged[ex][w] == best, (ex, w)
    # The long sentence really draws from several windows.
    assert len(set(merged[2])) >= 2


def test_merge_probabilities(dataset, tokenizer) -> None:
    f = _features(dataset, tokenizer)
    labels = _padded(f["labels"], fill=0)
    probs = np.eye(len(NAMES), dtype=np.float32)[np.clip(labels, 0, None)]
    merged = merge_word_probabilities(f, probs, len(dataset))
    assert [m.shape for m in merged] == [(len(w), len(NAMES)) for w, _ in SENTENCES]
    assert [m.argmax(-1).tolist() for m in merged] == _gold(dataset)


def test_merge_rejects_wrong_shapes(dataset, tokenizer) -> None:
    f = _features(dataset, tokenizer)
    with pytest.raises(ValueError):
        merge_word_predictions(f, np.zeros((len(f) - 1, MAX_LEN)), len(dataset))
    with pytest.raises(ValueError):
        merge_word_predictions(f, np.zeros((len(f), 3)), len(dataset))


def test_default_length_keeps_one_row_per_sentence(dataset, tokenizer) -> None:
    f = _features(dataset, tokenizer, max_seq_length=128, stride=32)
    assert f["example"] == list(range(len(SENTENCES)))
    assert merge_word_predictions(f, _padded(f["labels"]), len(dataset)) == _gold(dataset)


def test_byte_level_tokenizer_without_token_type_ids(dataset, tmp_path: Path) -> None:
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import RobertaTokenizerFast

    from tokclf.text.tokenizer import load_tokenizer

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(
        [" ".join(w) for w, _ in SENTENCES] * 20,
        trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    RobertaTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                         pad_token="<pad>").save_pretrained(str(tmp_path))
    tok = load_tokenizer(str(tmp_path))
    f = _features(dataset, tok, "all")
    assert "token_type_ids" not in f.column_names
    assert max(f["length"]) <= MAX_LEN
    assert merge_word_predictions(f, _padded(f["labels"]), len(dataset)) == _gold(dataset)
    checked = 0
    for row in f:
        words = SENTENCES[row["example"]][0][row["window_start"]:row["window_end"]]
        ref = tok(words, is_split_into_words=True)["input_ids"]
        if len(ref) <= MAX_LEN:  # all but the truncated oversized word's window
            assert row["input_ids"] == ref
            checked += 1
    assert checked >= len(f) - 1


def test_tokenize_words_is_tokenize_split_as_numpy(dataset, tokenizer) -> None:
    """Predict's features (`tokenize_words`: word lists in, numpy out, no datasets) are the rows
    `tokenize_split` gives training and evaluation, windows and unknown-token fill included, and
    `word_pieces` reads the same choice from both forms."""
    from tokclf.text.features import tokenize_words, word_pieces

    words = [s for s, _ in SENTENCES]
    originals = [list(s) for s in words]
    flat = tokenize_words(words, tokenizer, max_seq_length=MAX_LEN, stride=STRIDE)
    arrow = tokenize_split(dataset, tokenizer, max_seq_length=MAX_LEN, stride=STRIDE, strategy="first",
                           label_names=None, with_labels=False)
    assert words == originals  # the caller's lists are not rewritten by the unknown-token fill
    assert flat.column_names == arrow.column_names and len(flat) == len(arrow) > len(words)
    for name in flat.pieces:
        rows = [flat.pieces[name][a:b].tolist() for a, b in zip(flat.offsets[:-1], flat.offsets[1:])]
        assert rows == arrow[name], name
    for name in flat.rows:
        assert flat.rows[name].tolist() == arrow[name], name
    a, b = word_pieces(flat, len(words)), word_pieces(arrow, len(words))
    for field in ("n_words", "rows", "positions", "flat_word"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
