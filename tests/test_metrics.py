"""compute_metrics against hand-computed values and against seqeval itself."""

from __future__ import annotations

import json
import random
import warnings

import pytest

from tokclf.evaluation.metrics import compute_metrics, is_bio

NER = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def ids(names: list[str], labels: list[str]) -> list[int]:
    return [names.index(x) for x in labels]


def test_is_bio() -> None:
    assert is_bio(NER)
    assert is_bio(["O", "I-PER", "I-LOC"])  # IOB1
    assert is_bio(["O", "B-X", "I-X", "E-X", "S-X"])  # IOBES
    assert is_bio(["O", "B-X", "I-X", "L-X", "U-X"])  # BILOU
    assert not is_bio(["O"])
    assert not is_bio([])
    assert not is_bio(None)
    assert not is_bio(["NOUN", "VERB", "DET", "X"])
    assert not is_bio(["O", "B-PER", "PER"])
    assert not is_bio(["O", "B-"])  # a prefix without a type


def test_spec_example_no_entity_right() -> None:
    gold = [ids(NER, ["B-PER", "I-PER", "O", "O", "B-ORG"])]
    pred = [ids(NER, ["B-PER", "O", "O", "B-ORG", "I-ORG"])]
    m = compute_metrics(gold, pred, NER)
    assert m["scheme"] == "entity"
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)
    assert m["accuracy"] == pytest.approx(2 / 5)
    assert m["per_type"]["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_type"]["ORG"]["support"] == 1
    assert m["num_words"] == 5 and m["num_sentences"] == 1


def test_hand_computed_partial_scores() -> None:
    gold = [
        ids(NER, ["B-PER", "I-PER", "O", "B-LOC"]),
        ids(NER, ["B-ORG", "O", "B-PER"]),
    ]
    pred = [
        ids(NER, ["B-PER", "I-PER", "O", "B-LOC"]),  # 2 right
        ids(NER, ["B-LOC", "O", "O"]),  # ORG predicted as LOC, PER missed
    ]
    m = compute_metrics(gold, pred, NER)
    # gold 4 entities, predicted 3, right 2.
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 4)
    assert m["f1"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["per_type"]["PER"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["per_type"]["LOC"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert m["per_type"]["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_stray_i_starts_an_entity_like_conlleval() -> None:
    gold = [ids(NER, ["O", "B-PER", "I-PER", "O"])]
    pred = [ids(NER, ["O", "I-PER", "I-PER", "O"])]
    assert compute_metrics(gold, pred, NER)["f1"] == 1.0
    # An I- of another type after an entity starts a new one.
    pred = [ids(NER, ["O", "B-PER", "I-ORG", "O"])]
    m = compute_metrics(gold, pred, NER)
    assert m["precision"] == 0.0 and m["per_type"]["ORG"]["precision"] == 0.0


def test_entities_never_cross_sentences() -> None:
    gold = [ids(NER, ["O", "B-PER"]), ids(NER, ["I-PER", "O"])]  # two PER entities, not one
    m = compute_metrics(gold, gold, NER)
    assert m["per_type"]["PER"]["support"] == 2 and m["f1"] == 1.0


def test_bilou_is_read_as_iobes() -> None:
    names = ["O", "B-PER", "I-PER", "L-PER", "U-PER"]
    gold = [ids(names, ["U-PER", "O", "B-PER", "I-PER", "L-PER"])]
    pred = [ids(names, ["U-PER", "O", "B-PER", "L-PER", "O"])]
    m = compute_metrics(gold, pred, names)
    assert m["per_type"]["PER"]["support"] == 2
    assert m["precision"] == 0.5 and m["recall"] == 0.5


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_seqeval(seed: int) -> None:
    from seqeval.metrics import (
        classification_report,
        f1_score,
        precision_score,
        recall_score,
    )

    rng = random.Random(seed)
    gold, pred = [], []
    for _ in range(60):
        n = rng.randint(0, 12)
        gold.append([rng.randrange(len(NER)) for _ in range(n)])
        pred.append([g if rng.random() < 0.7 else rng.randrange(len(NER)) for g in gold[-1]])
    names_gold = [[NER[i] for i in s] for s in gold]
    names_pred = [[NER[i] for i in s] for s in pred]
    m = compute_metrics(gold, pred, NER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert m["precision"] == pytest.approx(precision_score(names_gold, names_pred))
        assert m["recall"] == pytest.approx(recall_score(names_gold, names_pred))
        assert m["f1"] == pytest.approx(f1_score(names_gold, names_pred))
        report = classification_report(names_gold, names_pred, output_dict=True, zero_division=0)
    for t in ("PER", "ORG", "LOC"):
        if t in report:
            assert m["per_type"][t]["f1"] == pytest.approx(report[t]["f1-score"])
            assert m["per_type"][t]["support"] == report[t]["support"]


def test_pos_tags_are_token_level() -> None:
    names = ["NOUN", "VERB", "DET"]
    gold = [[2, 0, 1], [0, 0]]
    pred = [[2, 0, 0], [0, 1]]
    m = compute_metrics(gold, pred, names)
    assert m["scheme"] == "token"
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == m["recall"] == m["f1"] == m["accuracy"]
    # NOUN: gold 3, predicted 3, right 2.  VERB: gold 1, predicted 1, right 0.  DET: 1/1/1.
    assert m["per_type"]["NOUN"] == {"precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3),
                                     "f1": pytest.approx(2 / 3), "support": 3}
    assert m["per_type"]["VERB"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_type"]["DET"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert "note" in m


def test_without_names_scores_ids_and_says_why() -> None:
    m = compute_metrics([[0, 1, 1]], [[0, 1, 0]], None)
    assert m["scheme"] == "token"
    assert set(m["per_type"]) == {"0", "1"}
    assert m["per_type"]["1"]["recall"] == 0.5
    assert "label names" in m["note"]


@pytest.mark.parametrize("names", [NER, ["NOUN", "VERB"], None])
def test_empty_and_degenerate_inputs_are_quiet(names) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for gold, pred in (([], []), ([[]], [[]]), ([[0, 0]], [[0, 0]])):
            m = compute_metrics(gold, pred, names)
            json.dumps(m)
            assert m["num_sentences"] == len(gold)
    assert compute_metrics([], [], NER)["f1"] == 0.0


def test_values_are_plain_python_numbers() -> None:
    import numpy as np

    gold = [np.array([1, 2, 0])]
    pred = [np.array([1, 2, 0])]
    m = compute_metrics(gold, pred, NER)
    text = json.dumps(m)
    assert json.loads(text)["f1"] == 1.0
    assert type(m["precision"]) is float and type(m["accuracy"]) is float and type(m["num_words"]) is int


def test_bad_shapes_and_ids() -> None:
    with pytest.raises(ValueError, match="sentences"):
        compute_metrics([[0]], [], NER)
    with pytest.raises(ValueError, match="sentence 0"):
        compute_metrics([[0, 1]], [[0]], NER)
    with pytest.raises(ValueError, match="not a label"):
        compute_metrics([[0]], [[len(NER)]], NER)


def test_accepts_a_datasets_column() -> None:
    import datasets

    ds = datasets.Dataset.from_dict({"tags": [[1, 2, 0], [0, 5]]})
    m = compute_metrics(ds["tags"], [[1, 2, 0], [0, 0]], NER)
    assert m["recall"] == 0.5 and m["precision"] == 1.0 and m["num_words"] == 5
