"""Training-step variants A/B-tested in one process, interleaved (what each speed lever is worth).

    python bench/step_variants.py [--sentences 2000] [VARIANT ...]

Each variant is its own MiniLM token classifier and fused AdamW, stepping through the same
length-grouped batches of CoNLL-2003 training sentences (batch 16, bf16 autocast, gradient
clipping at 1.0, as `tokclf train` does). Blocks of 5 steps run in turn for every variant, in a
random order per block, and only the process CPU time of each block is added to its variant: on
a shared 2-core VM wall-clock drifts by +-10% between runs, which is larger than most levers,
while interleaving cancels the drift. Ratios are against the first variant given.

Variants (combine with "+"): stock (transformers as loaded: SDPA attention, torch dropout, batches
padded to a multiple of 8), fastdrop (tokclf.training.fast_dropout: modules and attention), fastdrop_noatt
(dropout modules only, SDPA attention kept), freeze (word embeddings frozen), pad1 (no multiple-of-8
padding), bs32 (32 sentences per batch; compare per sentence), compile (torch.compile with dynamic
shapes; its compile time is reported apart, not counted in the per-sentence time), lazyemb
(row-sparse AdamW on the word embeddings, tokclf.training.sparse_embeddings), hfwalk (batches in
transformers' LengthGroupedSampler order instead of tokclf's shuffled length-grouped order; the same
batches' padding), groupN (batches from groups of N batches sorted by length, tokclf's
`length_grouping`, instead of 50: group1 is random batches).
Writes bench/results/step_variants.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TOKCLF_SHARED_DATA", REPO.parent / "shared" / "data")) / "conll2003"
MODEL = os.environ.get("TOKCLF_BENCH_MODEL", "sentence-transformers/all-MiniLM-L6-v2")
KNOWN = {"stock", "fastdrop", "fastdrop_noatt", "freeze", "pad1", "bs32", "compile", "lazyemb", "hfwalk"}


def batches_for(rows: list[dict], tokenizer: Any, batch_size: int, pad_multiple: int | None, seed: int,
                hf_walk: bool = False, group: int = 50) -> list[dict]:
    """Batches in `tokclf train`'s order (tokclf.training.sampling: length-grouped, then shuffled), or with
    hf_walk in transformers' LengthGroupedSampler order (each mega-batch longest to shortest)."""
    import torch
    from transformers import DataCollatorForTokenClassification

    from tokclf.training.sampling import length_grouped_batches

    lengths = [len(r["input_ids"]) for r in rows]
    generator = torch.Generator().manual_seed(seed)
    if hf_walk:
        from transformers.trainer_pt_utils import get_length_grouped_indices

        order = get_length_grouped_indices(lengths, batch_size, generator=generator)
        groups = [order[j:j + batch_size] for j in range(0, len(order), batch_size)]
    else:
        groups = length_grouped_batches(lengths, batch_size, mega_batch_mult=group, generator=generator)
    collate = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=pad_multiple)
    return [collate([rows[i] for i in g]) for g in groups]


def make_model(variant: set[str], model_path: str, num_labels: int) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForTokenClassification

    from tokclf.training import fast_dropout

    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(model_path, num_labels=num_labels, dtype=torch.float32)
    if "fastdrop" in variant or "fastdrop_noatt" in variant:
        fast_dropout.enable(model, attention="fastdrop" in variant)
    if "freeze" in variant:
        model.get_input_embeddings().weight.requires_grad_(False)
    model.train()
    if "compile" in variant:
        model = torch.compile(model, dynamic=True)
    opt_cls = torch.optim.AdamW
    if "lazyemb" in variant:
        from tokclf.training import sparse_embeddings

        sparse_embeddings.enable(model)
        opt_cls = sparse_embeddings.RowSparseAdamW
    opt = opt_cls([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
    return model, opt


def step(model: Any, opt: Any, batch: dict) -> None:
    import torch

    from tokclf.training.sparse_embeddings import clip_grad_norm, has_sparse_grads

    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(**batch).loss
    loss.backward()
    if has_sparse_grads(model.parameters()):
        clip_grad_norm(model.parameters(), 1.0)
    else:
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


def matmul_share(run: dict[str, Any], parts: set[str]) -> dict[str, Any]:
    """Where a step's CPU time goes (torch.profiler, 20 steps): matrix products vs the rest."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in run["batches"][:20]:
            step(run["model"], run["opt"], b)
    rows = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    total = sum(rows.values())
    matmul = sum(v for k, v in rows.items() if k in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"))
    top = sorted(rows.items(), key=lambda kv: -kv[1])[:12]
    result = {"matmul_share": round(matmul / total, 3),
              "top_ops": {k: round(v / total, 3) for k, v in top}}
    print(f"profile of {'+'.join(sorted(parts))}: matrix products {matmul / total:.1%} of CPU time; top ops:",
          ", ".join(f"{k} {v / total:.1%}" for k, v in top), flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="*", default=["stock", "fastdrop", "freeze", "pad1", "fastdrop+pad1",
                                                     "fastdrop+pad1+freeze"])
    ap.add_argument("--sentences", type=int, default=2000)
    ap.add_argument("--block", type=int, default=5, help="steps per variant turn")
    ap.add_argument("--profile", action="store_true",
                    help="also profile 20 steps of the first variant: share of CPU time in matrix products")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "step_variants.json"))
    args = ap.parse_args()
    variants = {v: set(v.split("+")) for v in args.variants}
    for v, parts in variants.items():
        if {p for p in parts if not (p.startswith("group") and p[5:].isdigit())} - KNOWN:
            raise SystemExit(f"unknown variant part(s) {sorted(parts - KNOWN)} in {v!r}; known: {sorted(KNOWN)}")

    import torch

    from tokclf.core.resources import resolve_model_path
    from tokclf.data.ingest import load_labelled_data
    from tokclf.text.features import tokenize_split
    from tokclf.text.tokenizer import load_tokenizer

    model_path = resolve_model_path(MODEL)
    data = load_labelled_data(str(DATA), max_samples=args.sentences)
    tokenizer = load_tokenizer(model_path)
    feats = tokenize_split(data.splits["train"], tokenizer, max_seq_length=128, stride=32, strategy="all",
                           label_names=data.label_names, with_labels=True)
    cols = ("input_ids", "attention_mask", "token_type_ids", "labels")
    rows = [{k: feats[i][k] for k in cols if k in feats.column_names} for i in range(len(feats))]

    runs: dict[str, dict[str, Any]] = {}
    for name, parts in variants.items():
        bs = 32 if "bs32" in parts else 16
        group = next((int(p[5:]) for p in parts if p.startswith("group") and p[5:].isdigit()), 50)
        batches = batches_for(rows, tokenizer, bs, None if "pad1" in parts else 8, seed=0, hf_walk="hfwalk" in parts,
                              group=group)
        model, opt = make_model(parts, model_path, data.num_labels)
        warm = time.perf_counter()
        for b in batches[:3]:  # warm-up: kernel selection (and compilation) for the first shapes
            step(model, opt, b)
        runs[name] = {"model": model, "opt": opt, "batches": batches[3:], "pos": 0, "cpu": 0.0, "sentences": 0,
                      "warmup_s": round(time.perf_counter() - warm, 1)}
    rng = random.Random(1)
    # Turns until every variant has been through its batches once; each turn covers about the
    # same number of sentences for every variant (bs32 takes half the steps).
    while any(r["pos"] < len(r["batches"]) for r in runs.values()):
        names = list(runs)
        rng.shuffle(names)
        for name in names:
            r = runs[name]
            n_steps = args.block // 2 if "bs32" in variants[name] else args.block
            chunk = r["batches"][r["pos"]:r["pos"] + max(n_steps, 1)]
            if not chunk:
                continue
            start = time.process_time()
            for b in chunk:
                step(r["model"], r["opt"], b)
            r["cpu"] += time.process_time() - start
            r["sentences"] += sum(int(b["input_ids"].shape[0]) for b in chunk)
            r["pos"] += len(chunk)
    first = next(iter(runs))
    base = runs[first]["cpu"] / runs[first]["sentences"]
    results = {}
    for name, r in runs.items():
        per = r["cpu"] / r["sentences"]
        results[name] = {"cpu_ms_per_sentence": round(per * 1000, 3), "speedup_vs_first": round(base / per, 3),
                         "sentences": r["sentences"], "warmup_s": r["warmup_s"]}
        print(f"{name:28s} {per * 1000:7.2f} CPU-ms/sentence  {base / per:5.3f}x vs {first}  "
              f"(warm-up {r['warmup_s']} s)", flush=True)
    profile = matmul_share(runs[first], variants[first]) if args.profile else None
    out = {"profile_first_variant": profile, "machine": {"processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
           "sentences": args.sentences, "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
