"""The command line: spec flag spellings, config + override, exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tokclf.cli.main import build_parser, collect_params, main

FIXTURES = Path(__file__).parent / "fixtures"


def test_spec_flags_parse():
    # Every flag used in the spec's CLI examples, spelled the same.
    args = build_parser().parse_args([
        "train", "--model", "bert-base-cased", "--data-path", "./ner_data", "--tokens-column", "tokens",
        "--tags-column", "ner_tags", "--project-name", "my-ner-model", "--lr", "5e-5", "--epochs", "5",
        "--batch-size", "16", "--train-split", "train", "--valid-split", "validation", "--max-seq-length", "256",
        "--early-stopping-patience", "3", "--mixed-precision", "fp16", "--push-to-hub", "--username", "u",
        "--token", "hf_x",
    ])
    values = collect_params(args)
    assert values["tags_column"] == "ner_tags" and values["max_seq_length"] == 256 and values["push_to_hub"] is True
    assert values["lr"] == 5e-5 and values["early_stopping_patience"] == 3 and values["mixed_precision"] == "fp16"


def test_autotrain_spelling():
    args = build_parser().parse_args(["token-classification", "--train", "--model", "m", "--data-path", "d",
                                      "--project-name", "p"])
    assert args.func.__name__ == "cmd_train"


def test_config_then_flags_override(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("data:\n  data_path: d\ntrain:\n  project_name: p\n  lr: 0.001\n  epochs: 7\n")
    args = build_parser().parse_args(["train", "--config", str(cfg), "--lr", "0.5"])
    values = collect_params(args)
    assert values["lr"] == 0.5 and values["epochs"] == 7 and values["data_path"] == "d"


def test_unknown_param_in_config_exit_code(tmp_path, capsys):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("data_path: d\nproject_name: p\nlearning_rate: 3\n")
    assert main(["train", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "learning_rate: unknown parameter" in err and str(cfg) in err


def test_validate_ok_and_report(tmp_path, ner_jsonl_dir, capsys):
    out = tmp_path / "report.json"
    rc = main(["validate", "--data-path", str(ner_jsonl_dir), "--valid-split", "validation", "--output", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["errors"] == [] and report["stats"]["splits"]["train"]["sentences"] == 48


def test_validate_hard_error_exit_1(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"tokens": ["a", "b"], "tags": ["O", "O"]}\n{"tokens": ["a", "b"], "tags": ["O"]}\n')
    rc = main(["validate", "--data-path", str(data)])
    assert rc == 1
    assert "d.jsonl, line 2" in capsys.readouterr().out


@pytest.mark.parametrize("name, fragment", [
    ("broken_quoting.csv", "row 2"),
    ("bad_literal.csv", "is not a list literal"),
    ("latin1.txt", "not valid UTF-8"),
    ("missing_column.csv", "column 'tokens' not found"),
    ("wrong_columns.txt", "line"),
])
def test_malformed_files_exit_2_with_place(name, fragment, capsys, tmp_path):
    rc = main(["validate", "--data-path", str(FIXTURES / "bad" / name), "--output", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2 and name in err and fragment in err
    assert "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


def test_help_is_light():
    # `tokclf --help` must not import torch/transformers (start-up time; see docs/benchmarks.md).
    code = "import sys; from tokclf.cli.main import build_parser; build_parser().format_help(); print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False False"


def test_main_in_process_gives_back_transformers_settings_and_sigterm(tiny_model_dir, capsys):
    """`tokclf predict` quiets transformers' loading output for its own run only: a Python caller of
    main() keeps its verbosity, progress bars and SIGTERM handler."""
    import signal

    from transformers.utils import logging as hf_logging

    def mine(signum, frame):  # noqa: ARG001
        pass

    before = hf_logging.get_verbosity()
    old_handler = signal.signal(signal.SIGTERM, mine)
    hf_logging.set_verbosity_info()
    hf_logging.enable_progress_bar()
    try:
        assert main(["predict", "--model", str(tiny_model_dir), "Alice lives in Paris ."]) == 0
        assert hf_logging.get_verbosity() == hf_logging.INFO
        assert hf_logging.is_progress_bar_enabled()
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        hf_logging.set_verbosity(before)
        signal.signal(signal.SIGTERM, old_handler)
    assert "Alice" in capsys.readouterr().out
