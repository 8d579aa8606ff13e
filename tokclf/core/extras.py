"""Optional parts of tokclf: the packages behind `pip install 'tokclf[EXTRA]'`, checked where a
command first needs one, so a missing package is a one-line error naming the extra rather than an
ImportError from deep inside a library."""

from __future__ import annotations

import importlib.util

from tokclf.core.errors import EnvironmentProblem

# Import name -> the extra that installs it.
EXTRAS = {
    "onnx": "onnx", "onnxruntime": "onnx",
    "fastapi": "serve", "uvicorn": "serve",
    "matplotlib": "plots",
    "prefect": "pipeline", "dvc": "pipeline",
    "mlflow": "mlflow", "wandb": "wandb",
    "spacy": "spacy",
}


def require(*modules: str, feature: str) -> None:
    """Raise EnvironmentProblem naming the extra when any of `modules` is not installed."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        extras = sorted({EXTRAS.get(m, m) for m in missing})
        raise EnvironmentProblem(
            f"{feature} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed",
            fix=f"pip install 'tokclf[{','.join(extras)}]' (or 'tokclf[all]').", code="E0001",
        )
