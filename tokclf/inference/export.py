"""Export a trained model to ONNX (and optionally dynamic int8) for onnxruntime.

    tokclf export --model outputs/wnut16-minilm --output outputs/wnut16-minilm-onnx --format onnx [--quantize int8]

The export folder holds:
    model.onnx             fp32 graph: inputs input_ids, attention_mask (and token_type_ids when
                           the tokenizer uses them), output logits; batch and sequence axes dynamic
    model_quantized.onnx   with --quantize int8: MatMul weights int8 (per output channel),
                           activations quantized at run time, the classification head kept in
                           fp32 (onnxruntime.quantization.quantize_dynamic)
    tokenizer files        the model's tokenizer (save_pretrained)
    config.json            the model config, with id2label/label2id
    labels.json            {"id2label": {...}, "label2id": {...}}
    tokclf_export.json     manifest: files per precision, the default one (int8 when quantized),
                           max_seq_length/stride of the training run, opset, versions, and the
                           check of onnxruntime against PyTorch made at export time

`tokclf predict --model EXPORT_DIR` (or `tokclf.inference.predictor.predict(EXPORT_DIR, ...)`) runs the
default file through onnxruntime with the same windows, merging and outputs as the PyTorch model;
point --model at a .onnx file to choose one.

Exporter: torch 2.13 defaults to the torch.export-based ("dynamo") exporter, which needs the
`onnxscript` package; tokclf uses the TorchScript-based exporter (`dynamo=False`), which needs
nothing more and gives the same graph for encoder models, and falls back to dynamo when the
TorchScript one is unavailable.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from tokclf.core.errors import EnvironmentProblem, TokclfError
from tokclf.core.extras import require
from tokclf.core.fileio import check_target, staged_dir, write_json
from tokclf.inference.loading import ONNX_MANIFEST

log = logging.getLogger("tokclf")

FILES = {"fp32": "model.onnx", "int8": "model_quantized.onnx"}
DEFAULT_OPSET = 17
_SAMPLE = [
    "John Smith works at Google in Paris .",
    "The European Commission said on Thursday it disagreed with German advice to consumers to shun British lamb .",
]


def export_model(
    model_dir: str | Path,
    output_dir: str | Path,
    *,
    fmt: str = "onnx",
    quantize: str | None = None,
    opset: int = DEFAULT_OPSET,
) -> dict[str, Any]:
    """Export `model_dir` (a `tokclf train` folder or a Hub model) to `output_dir`; returns the
    manifest. Written to a temporary sibling folder and moved into place only when complete."""
    if fmt != "onnx":
        raise TokclfError(f"export format {fmt!r} is not supported", where="--format", fix="use --format onnx.", code="E3011")
    if quantize not in (None, "none", "int8"):
        raise TokclfError(f"quantization {quantize!r} is not supported", where="--quantize", fix="use --quantize int8.", code="E3012")
    quantize = None if quantize == "none" else quantize
    target = Path(output_dir).expanduser().resolve()
    check_target(target, marker=ONNX_MANIFEST, what="a tokclf export")
    require("onnx", "onnxruntime", feature="ONNX export")

    import torch

    from tokclf.inference.loading import context_setting, decoding_setting, load_trained, window_settings

    model, tokenizer, names, saved = load_trained(str(model_dir))
    length, overlap = window_settings(saved)
    decoding = decoding_setting(saved)
    model = model.to("cpu").eval()
    num_labels = model.config.num_labels
    id2label = {i: (names[i] if names else model.config.id2label.get(i, f"LABEL_{i}")) for i in range(num_labels)}

    input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    if "input_ids" not in input_names:
        input_names.insert(0, "input_ids")
    example = tokenizer(_SAMPLE, padding=True, return_tensors="pt")
    example_inputs = tuple(example[n] for n in input_names)

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return self.inner(**dict(zip(input_names, args))).logits

    wrapper = LogitsOnly(model).eval()
    with staged_dir(target, marker=ONNX_MANIFEST, what="a tokclf export") as tmp:
        exporter = _export_onnx(wrapper, example_inputs, input_names, tmp / FILES["fp32"], opset)
        tokenizer.save_pretrained(str(tmp))
        model.config.save_pretrained(str(tmp))
        labels = {"id2label": {str(i): n for i, n in id2label.items()}, "label2id": {n: i for i, n in id2label.items()}}
        write_json(tmp / "labels.json", labels)
        files = {"fp32": FILES["fp32"]}
        if quantize == "int8":
            _quantize_int8(tmp / FILES["fp32"], tmp / FILES["int8"])
            files["int8"] = FILES["int8"]
        checks = {p: _check_against_torch(model, tokenizer, input_names, tmp / f) for p, f in files.items()}
        if checks["fp32"]["max_abs_diff"] > 1e-3:
            raise TokclfError(
                f"the exported ONNX graph does not reproduce the PyTorch model (max |logit difference| "
                f"{checks['fp32']['max_abs_diff']:.2g})", where=str(model_dir),
                fix="report this model's architecture; try another --opset.", code="E3013",
            )
        manifest = {
            "format": "onnx",
            "files": files,
            "default": "int8" if quantize == "int8" else "fp32",
            "inputs": input_names,
            "outputs": ["logits"],
            "labels": [id2label[i] for i in range(num_labels)],
            "max_seq_length": length,
            "stride": overlap,
            "decoding": decoding,
            "document_context": context_setting(saved),
            "source_model": str(model_dir),
            "opset": opset,
            "exporter": exporter,
            "check": checks,
            "versions": _versions(),
        }
        write_json(tmp / ONNX_MANIFEST, manifest)
    manifest["output_dir"] = str(target)
    return manifest


def _export_onnx(wrapper: Any, example_inputs: tuple, input_names: list[str], path: Path, opset: int) -> str:
    import torch

    axes = {name: {0: "batch", 1: "sequence"} for name in [*input_names, "logits"]}
    with warnings.catch_warnings():
        # The TorchScript exporter warns that it is deprecated and that some shape checks are
        # traced as constants (they are constant for encoders: no past key/values).
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                wrapper, example_inputs, str(path), input_names=input_names, output_names=["logits"],
                dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False,
            )
            return "torchscript"
        except (TypeError, RuntimeError, NotImplementedError) as exc:
            legacy_error = exc
        try:
            batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
            shapes = tuple({0: batch, 1: seq} for _ in input_names)
            program = torch.onnx.export(wrapper, example_inputs, dynamic_shapes=shapes, input_names=input_names,
                                        output_names=["logits"], opset_version=opset, dynamo=True)
            program.save(str(path))
            return "dynamo"
        except ImportError as exc:
            raise EnvironmentProblem(
                f"ONNX export failed: the TorchScript exporter said {legacy_error}; the dynamo exporter needs "
                f"a package that is missing ({exc})", fix="pip install onnxscript", code="E3014",
            ) from None


def _quantize_int8(source: Path, dest: Path) -> None:
    """Dynamic int8: MatMul/Gemm weights quantized per output channel, the classification head
    kept in fp32. On MiniLM/CoNLL-2003 per-tensor scales cost 1.5 F1 points and per-channel ones
    0.1, at the same speed (docs/inference.md); the head is tiny and closest to the decision."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    head = [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and "classifier" in n.name]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime logs a pre-processing hint on the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Embedding tables (Gather) stay fp32: quantizing them costs accuracy for no speed.
            quantize_dynamic(
                str(source), str(dest), weight_type=QuantType.QInt8, per_channel=True,
                op_types_to_quantize=["MatMul", "Gemm"], nodes_to_exclude=head,
            )
    finally:
        root.setLevel(level)


def _check_against_torch(model: Any, tokenizer: Any, input_names: list[str], onnx_file: Path) -> dict[str, Any]:
    """Run both on sample sentences of other lengths than the traced ones (dynamic axes)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    texts = [*_SAMPLE, "Short .", "Peter Blackburn of Reuters reported from Brussels on 22 August 1996 ."]
    enc = tokenizer(texts, padding=True, return_tensors="np")
    feed = {n: enc[n].astype(np.int64) for n in input_names}
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], feed)[0]
    with torch.inference_mode():
        want = model(**{n: torch.from_numpy(v) for n, v in feed.items()}).logits.numpy()
    mask = enc["attention_mask"].astype(bool)
    return {
        "max_abs_diff": float(np.abs(got - want)[mask].max()),
        "argmax_agreement": float((got.argmax(-1) == want.argmax(-1))[mask].mean()),
        "tokens": int(mask.sum()),
    }


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch
    import transformers

    from tokclf import __version__

    return {"tokclf": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
