"""Inference speed and accuracy of `tokclf predict`, measured in one process on this machine.

Part 1, raw text: the same N CoNLL-2003 test sentences, words joined with spaces, tagged by
`transformers.pipeline("token-classification", aggregation_strategy="simple")` (fp32, batch 32,
the reference), by the same pipeline with aggregation_strategy="first" (whole words from their
first subword, tokclf's own rule), and by `tokclf.inference.predictor` (fp32, and bf16 where the CPU has
native bf16); sentences/s, the speed ratio to the "simple" pipeline, and the share of texts where
tokclf gives the same entities (type, start, end) as each pipeline.

Part 2, the whole CoNLL-2003 test split (pre-split words, gold tags): sentences/s and word-level
entity F1 (as `tokclf evaluate` scores) for PyTorch fp32, PyTorch bf16, ONNX fp32 and ONNX int8.

    python bench/inference.py [--model DIR] [--sentences 1000] [--repeats 3]

Without --model a MiniLM CoNLL model is trained first with `tokclf.train` (3,000 training
sentences, 1 epoch, lr 1e-4, batch 16, bf16, subword_labels="all" unless --subword-labels says
otherwise) in a temporary folder; the results say so. Timings
take the fastest of `--repeats` interleaved runs (the machine may be shared with other jobs).
Writes bench/results/inference.json and the table section of docs/inference.md.
Reads ../shared/data/conll2003 (or $TOKCLF_SHARED_DATA/conll2003).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TOKCLF_SHARED_DATA", REPO.parent / "shared" / "data")) / "conll2003"
DOC = REPO / "docs" / "inference.md"
BEGIN, END = "<!-- bench/inference.py: begin -->", "<!-- bench/inference.py: end -->"


def train_quick_model(workdir: Path, subword_labels: str) -> Path:
    from tokclf import TokenClassificationParams, train

    params = TokenClassificationParams(
        subword_labels=subword_labels,
        data_path=str(DATA), model="sentence-transformers/all-MiniLM-L6-v2", project_name=str(workdir / "conll-minilm"),
        valid_split="valid", test_split=None, max_samples=3000, lr=1e-4, epochs=1, batch_size=16,
        mixed_precision="bf16", seed=42,
    )
    return train(params).output_dir


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def pipeline_entities(result: list[dict]) -> set[tuple[str, int, int]]:
    return {(e["entity_group"], int(e["start"]), int(e["end"])) for e in result}


def our_entities(record) -> set[tuple[str, int, int]]:
    return {(e["type"], e["start"], e["end"]) for e in record.entities}


def part_raw_text(model: Path, texts: list[str], repeats: int) -> dict:
    from transformers import pipeline

    from tokclf.core.hardware import device
    from tokclf.core.hardware import resolve_precision
    from tokclf.inference.predictor import Predictor

    # The pipelines run where tokclf runs (the GPU when there is one), so the ratio compares recipes.
    dev = device()
    pipes = {
        "simple": pipeline("token-classification", model=str(model), aggregation_strategy="simple", device=dev),
        "first": pipeline("token-classification", model=str(model), aggregation_strategy="first", device=dev),
    }
    configs = {"fp32": Predictor(model, mixed_precision=None)}
    if resolve_precision("auto") == "bf16":
        configs["bf16"] = Predictor(model, mixed_precision="bf16")
    for pipe in pipes.values():
        pipe(texts[:64], batch_size=32)
    for p in configs.values():
        p.predict(texts[:64])
    times: dict[str, list[float]] = {**{f"pipeline_{k}": [] for k in pipes}, **{k: [] for k in configs}}
    outputs: dict[str, list] = {}
    for _ in range(repeats):
        for name, pipe in pipes.items():
            dt, outputs[f"pipeline_{name}"] = timed(pipe, texts, batch_size=32)
            times[f"pipeline_{name}"].append(dt)
        for name, p in configs.items():
            dt, outputs[name] = timed(p.predict, texts)
            times[name].append(dt)
    reference = {k: [pipeline_entities(r) for r in outputs[f"pipeline_{k}"]] for k in pipes}
    n = len(texts)
    base = n / min(times["pipeline_simple"])
    rows = {}
    for k in pipes:
        speed = n / min(times[f"pipeline_{k}"])
        rows[f"pipeline_{k}_fp32_batch32"] = {"sentences_per_s": round(speed, 1), "speedup_vs_pipeline": round(speed / base, 2),
                                              "runs_s": [round(t, 2) for t in times[f"pipeline_{k}"]]}
    for name in configs:
        ours = [our_entities(r) for r in outputs[name]]
        speed = n / min(times[name])
        row = {"sentences_per_s": round(speed, 1), "speedup_vs_pipeline": round(speed / base, 2)}
        for k in pipes:
            same = sum(a == b for a, b in zip(reference[k], ours))
            row[f"same_entities_as_{k}"] = round(same / n, 4)
            row[f"texts_differing_from_{k}"] = n - same
        row["runs_s"] = [round(t, 2) for t in times[name]]
        rows[f"tokclf_{name}"] = row
    return {"texts": n, "results": rows}


def part_conll_test(model: Path, workdir: Path, sentences, repeats: int) -> dict:
    from tokclf.inference.export import export_model
    from tokclf.core.hardware import resolve_precision
    from tokclf.evaluation.scoring import score_records
    from tokclf.inference.predictor import Predictor

    export_dir = workdir / "onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = export_model(model, export_dir, quantize="int8")
    configs = {"PyTorch fp32": Predictor(model, mixed_precision=None)}
    if resolve_precision("auto") == "bf16":  # as in part_raw_text: native bf16 on this CPU or GPU
        configs["PyTorch bf16"] = Predictor(model, mixed_precision="bf16")
    configs["ONNX fp32"] = Predictor(export_dir / "model.onnx")
    configs["ONNX int8"] = Predictor(export_dir / "model_quantized.onnx")
    for p in configs.values():
        p.predict(sentences[:64])
    times: dict[str, list[float]] = {k: [] for k in configs}
    scores: dict[str, dict] = {}
    for _ in range(repeats):
        for name, p in configs.items():
            dt, records = timed(p.predict, sentences)
            times[name].append(dt)
            scores[name] = score_records(records, p.label_names)
    rows = {}
    for name in configs:
        m = scores[name]
        rows[name] = {
            "sentences_per_s": round(len(sentences) / min(times[name]), 1), "f1": round(m["f1"], 4),
            "precision": round(m["precision"], 4), "recall": round(m["recall"], 4),
            "runs_s": [round(t, 2) for t in times[name]],
        }
    fp32 = rows["PyTorch fp32"]["f1"]
    for row in rows.values():
        row["f1_drop_points_vs_pytorch_fp32"] = round((fp32 - row["f1"]) * 100, 2)
    sizes = {p: round((export_dir / f).stat().st_size / 2**20, 1) for p, f in manifest["files"].items()}
    return {"sentences": len(sentences), "results": rows, "onnx_file_mib": sizes, "export_check": manifest["check"]}


def markdown(result: dict) -> str:
    raw, test, machine = result["raw_text"], result["conll_test"], result["machine"]
    lines = [
        BEGIN,
        (f"Measured {result['date']} by `python bench/inference.py` on {machine['cores']} CPU cores "
         f"({machine['cpu']}; native bf16: {'yes' if machine['native_bf16'] else 'no'}; torch threads "
         f"{machine['torch_threads']}). The machine was shared with other jobs while it ran; timings are the "
         f"fastest of {result['args']['repeats']} interleaved runs, so ratios measured in the same run are more "
         "reliable than absolute numbers."),
        "",
        f"Model: {result['model_note']}",
        "",
        (f"**Raw text** ({raw['texts']} CoNLL-2003 test sentences, words joined with spaces; the same model and "
         "texts for all rows; same entities = identical sets of (type, start, end) to the pipeline's):"),
        "",
        "| | sentences/s | vs `simple` pipeline | same entities as `simple` | same entities as `first` |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in raw["results"].items():
        if name.startswith("pipeline"):
            strategy = name.split("_")[1]
            lines.append(f"| `pipeline(aggregation_strategy=\"{strategy}\")`, fp32, batch 32 | {row['sentences_per_s']} | "
                         f"{row['speedup_vs_pipeline']:.2f}x | - | - |")
        else:
            lines.append(
                f"| `tokclf predict`, {name.split('_', 1)[1]} | {row['sentences_per_s']} | {row['speedup_vs_pipeline']:.2f}x | "
                f"{row['same_entities_as_simple'] * 100:.1f}% ({row['texts_differing_from_simple']} differ) | "
                f"{row['same_entities_as_first'] * 100:.1f}% ({row['texts_differing_from_first']} differ) |")
    lines += [
        "",
        (f"**CoNLL-2003 test** ({test['sentences']} sentences, pre-split words; word-level entity F1 as "
         "`tokclf evaluate` scores it):"),
        "",
        "| backend | sentences/s | F1 | F1 drop vs PyTorch fp32 |",
        "|---|---:|---:|---:|",
    ]
    for name, row in test["results"].items():
        lines.append(f"| {name} | {row['sentences_per_s']} | {row['f1'] * 100:.2f} | {row['f1_drop_points_vs_pytorch_fp32']:+.2f} points |")
    lines += [
        "",
        (f"ONNX files: fp32 {test['onnx_file_mib'].get('fp32')} MiB, int8 {test['onnx_file_mib'].get('int8')} MiB. "
         f"Export check (sample sentences): fp32 max |logit difference| {test['export_check']['fp32']['max_abs_diff']:.1e}, "
         f"int8 argmax agreement {test['export_check'].get('int8', {}).get('argmax_agreement', float('nan')):.3f}."),
        END,
    ]
    return "\n".join(lines)


def write_doc(section: str) -> None:
    from docsection import write_section

    write_section(DOC, BEGIN, END, section, heading="## Benchmarks\n\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a MiniLM CoNLL-2003 model folder (tokclf train); default: train one quickly")
    ap.add_argument("--sentences", type=int, default=1000, help="raw-text comparison size (default 1000)")
    ap.add_argument("--test-sentences", type=int, help="limit the CoNLL test part (default: the whole split)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--subword-labels", default="all", choices=["all", "first"],
                    help="for the quickly trained model (default all: the pipeline's 'simple' aggregation reads "
                    "every subword's own prediction, which only a model trained on all subwords makes consistent)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "inference.json"))
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite the table in docs/inference.md")
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"CoNLL-2003 not found at {DATA}; set TOKCLF_SHARED_DATA")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import torch

    from tokclf.core.hardware import cpu_has_native_bf16
    from tokclf.data.conll import read_conll
    from tokclf.inference.records import PredictionInput

    test = read_conll(DATA / "test.txt")
    texts = [" ".join(words) for words in test.tokens[: args.sentences]]
    sentences = [PredictionInput(words=w, gold=g) for w, g in zip(test.tokens, test.tags)][: args.test_sentences]

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.model:
            model = Path(args.model)
            note = f"`{args.model}` (given with --model)."
        else:
            print("no --model given: training MiniLM on 3,000 CoNLL-2003 sentences (1 epoch, bf16) first", file=sys.stderr)
            started = time.perf_counter()
            model = train_quick_model(workdir, args.subword_labels)
            note = (f"all-MiniLM-L6-v2 trained by this script with `tokclf.train` on the first 3,000 CoNLL-2003 train "
                    f"sentences (1 epoch, lr 1e-4, batch 16, bf16, subword_labels={args.subword_labels!r}, "
                    f"{time.perf_counter() - started:.0f} s); a fully trained model scores higher, the speed "
                    "figures do not depend on it.")
        print("part 1: raw text vs transformers.pipeline", file=sys.stderr)
        raw = part_raw_text(model, texts, args.repeats)
        print(json.dumps(raw["results"]), file=sys.stderr)
        print("part 2: CoNLL-2003 test, PyTorch/ONNX", file=sys.stderr)
        conll = part_conll_test(model, workdir, sentences, max(1, args.repeats - 1))
        print(json.dumps(conll["results"]), file=sys.stderr)

    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "native_bf16": cpu_has_native_bf16(),
                    "load_average_at_end": os.getloadavg()},
        "args": vars(args),
        "model_note": note,
        "raw_text": raw,
        "conll_test": conll,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    section = markdown(result)
    if not args.no_doc:
        write_doc(section)
    print(section)


if __name__ == "__main__":
    main()
