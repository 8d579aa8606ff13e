"""load_tokenizer: fast only, and the word-initial space for pre-split words where the tokenizer needs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokclf.core.errors import EnvironmentProblem
from tokclf.text.tokenizer import load_tokenizer, needs_prefix_space

CORPUS = ["hello world the quick brown fox jumps over the lazy dog", "world peace and a brown world"] * 40


def _byte_level_backend():
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False)
    return tok


SPECIALS = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import RobertaTokenizerFast

    out = tmp_path_factory.mktemp("roberta-bpe")
    RobertaTokenizerFast(tokenizer_object=_byte_level_backend(), **SPECIALS).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def generic_bpe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same byte-level BPE behind the generic fast class, which ignores add_prefix_space=True."""
    from transformers import PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("generic-bpe")
    PreTrainedTokenizerFast(tokenizer_object=_byte_level_backend(), **SPECIALS).save_pretrained(str(out))
    return out


def _pieces(tokenizer, words: list[str]) -> list[str]:
    enc = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
    return tokenizer.convert_ids_to_tokens(enc["input_ids"])


def _running_text_pieces(tokenizer, text: str) -> list[str]:
    return tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("which", ["roberta_dir", "generic_bpe_dir"])
def test_byte_level_bpe_gets_prefix_space(which: str, request: pytest.FixtureRequest) -> None:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = request.getfixturevalue(which)
    plain = AutoTokenizer.from_pretrained(str(path))
    assert needs_prefix_space(plain)
    # Without the fix, a pre-split word is not tokenized as it is inside running text.
    assert _pieces(plain, ["the", "world"]) != _running_text_pieces(plain, " the world")

    tok = load_tokenizer(str(path))
    assert isinstance(tok, PreTrainedTokenizerFast)
    assert not needs_prefix_space(tok)
    assert tok.add_prefix_space is True
    # Every pre-split word now starts with the space marker, as in running text.
    assert _pieces(tok, ["the", "world"]) == _running_text_pieces(plain, " the world")
    assert _pieces(tok, ["world"])[0].startswith("Ġ")


def test_prefix_space_survives_save_and_plain_reload(generic_bpe_dir: Path, tmp_path: Path) -> None:
    # The trained model is saved with this tokenizer; inference loading it plainly must agree.
    from transformers import AutoTokenizer

    tok = load_tokenizer(str(generic_bpe_dir))
    tok.save_pretrained(str(tmp_path))
    again = AutoTokenizer.from_pretrained(str(tmp_path))
    assert not needs_prefix_space(again)
    assert _pieces(again, ["the", "world"]) == _pieces(tok, ["the", "world"])


def test_wordpiece_is_left_alone(tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = load_tokenizer(str(tokenizer_dir))
    assert not needs_prefix_space(tok)
    before = json.loads(AutoTokenizer.from_pretrained(str(tokenizer_dir)).backend_tokenizer.to_str())["pre_tokenizer"]
    assert json.loads(tok.backend_tokenizer.to_str())["pre_tokenizer"] == before
    assert _pieces(tok, ["Hello", "world"]) == ["hello", "world"]


def test_metaspace_never_is_switched_to_always(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="never")
    backend.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<pad>"]))
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>").save_pretrained(str(tmp_path))

    from transformers import AutoTokenizer

    assert not _pieces(AutoTokenizer.from_pretrained(str(tmp_path)), ["world"])[0].startswith("▁")
    tok = load_tokenizer(str(tmp_path))
    assert json.loads(tok.backend_tokenizer.to_str())["pre_tokenizer"]["prepend_scheme"] == "always"
    assert _pieces(tok, ["the", "world"]) == ["▁the", "▁world"]


def test_slow_tokenizer_is_refused(monkeypatch: pytest.MonkeyPatch, tokenizer_dir: Path) -> None:
    import transformers

    class SlowTokenizer:  # stands in for a PythonBackend / SentencePieceBackend tokenizer
        pass

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", classmethod(lambda cls, *a, **k: SlowTokenizer()))
    with pytest.raises(EnvironmentProblem) as err:
        load_tokenizer(str(tokenizer_dir))
    message = str(err.value)
    assert str(tokenizer_dir) in message and "slow tokenizer" in message and "How to fix" in message


def test_missing_model_is_an_environment_problem(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="cannot load the tokenizer"):
        load_tokenizer(str(tmp_path / "empty"))
