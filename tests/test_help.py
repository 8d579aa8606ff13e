"""Every command's --help, through the installed `tokclf` entry point, as a user types it."""

from __future__ import annotations

import argparse
import shutil
import subprocess

import pytest

from tokclf.cli.main import build_parser
from tokclf.core.params import TokenClassificationParams


def _commands() -> list[list[str]]:
    """Every subcommand path of the parser: ["train"], ["stage", "ingest"], ..."""
    out: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out.append([*prefix, name])
                    walk(sub, [*prefix, name])

    walk(build_parser(), [])
    return out


COMMANDS = _commands()
PARAM_COMMANDS = {("train",), ("token-classification",)}


def test_the_parser_has_the_documented_commands() -> None:
    names = {tuple(c) for c in COMMANDS}
    for expected in [("train",), ("token-classification",), ("validate",), ("evaluate",), ("predict",), ("export",),
                     ("serve",), ("publish",), ("stage",), *[("stage", s) for s in
                     ("ingest", "validate", "tokenize", "train", "evaluate", "publish", "plots")]]:
        assert expected in names


@pytest.mark.parametrize("command", [[]] + COMMANDS, ids=lambda c: " ".join(c) or "tokclf")
def test_help_exits_0_without_traceback(command: list[str]) -> None:
    exe = shutil.which("tokclf")
    assert exe, "the tokclf entry point is not installed (pip install -e .)"
    proc = subprocess.run([exe, *command, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout.startswith("usage: tokclf")
    if tuple(command) in PARAM_COMMANDS:
        for name in TokenClassificationParams.model_fields:
            assert "--" + name.replace("_", "-") in proc.stdout, f"--{name} missing from `tokclf {command[0]} --help`"
