"""`tokclf convert INPUT OUTPUT [--from F] [--to F]` (registered through tokclf.cli.main.EXTENSIONS)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

FORMATS = ("conll", "jsonl", "labelstudio", "doccano", "prodigy", "brat", "spacy")


def cmd_convert(args: argparse.Namespace) -> int:
    from tokclf.inference.convert import convert

    done = convert(args.input, args.output, from_format=args.from_format, to_format=args.to_format,
                   label_map=args.label_map, span_alignment=args.span_alignment, overlapping=args.overlapping)
    summary = {"records": done.records, "from": done.source_format, "to": done.target_format}
    if done.stats:
        summary["spans"] = done.stats
    print(f"wrote {args.output}: {json.dumps(summary)}", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "convert", help="convert data between conll, jsonl, labelstudio, doccano, prodigy, brat and spacy",
        description="Convert token/tag data and span annotation exports into each other. Spans on word boundaries "
        "round-trip exactly; span edges inside words follow --span-alignment, as in training.",
    )
    p.add_argument("input", help="file or folder to read (format detected from its content, or --from)")
    p.add_argument("output", help="file to write (a folder for brat); format from --to or the name: .json labelstudio, "
                   ".jsonl jsonl, .conll/.tsv/.txt conll, .spacy spacy, no suffix brat")
    p.add_argument("--from", dest="from_format", choices=FORMATS, help="input format (default: detected)")
    p.add_argument("--to", dest="to_format", choices=FORMATS, help="output format (default: from OUTPUT's name)")
    p.add_argument("--label-map", help="rename/merge types: 'Modifier=Disease,SpecificDisease=Disease' or a YAML/JSON file")
    p.add_argument("--span-alignment", choices=["expand", "contract", "strict"], default="expand")
    p.add_argument("--overlapping", choices=["error", "longest", "first"], default="error")
    p.set_defaults(func=cmd_convert)
