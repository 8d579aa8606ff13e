"""tokclf serve: a real uvicorn server on 127.0.0.1 (free port, background thread), concurrent
requests batched together, limits and clear 4xx errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import save_tiny_bert  # tests/ is on sys.path

httpx = pytest.importorskip("httpx")

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture(scope="module")
def predictor(tokenizer_dir: Path, tmp_path_factory):
    from tokclf.inference.predictor import Predictor

    out = save_tiny_bert(tokenizer_dir, tmp_path_factory.mktemp("serve-model"), seed=5, labels=LABELS)
    return Predictor(out, mixed_precision=None)


@pytest.fixture(scope="module")
def server(predictor):
    from tokclf.inference.serve import ServerThread, ServeSettings, create_app

    settings = ServeSettings(max_body_bytes=4096, max_texts=8, max_text_chars=500, batch_wait_ms=50)
    app = create_app(predictor, settings)
    with ServerThread(app) as url:
        assert url.startswith("http://127.0.0.1:")
        yield url


def test_health(server, predictor):
    r = httpx.get(f"{server}/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["labels"] == LABELS and body["backend"] == "pytorch"
    assert body["limits"]["max_texts"] == 8


def test_concurrent_requests_are_batched_and_correct(server, predictor):
    texts = [f"Request {i}:  John Smith visited Paris, Zoë too {'!' * (i % 4)}" for i in range(24)]
    expected = [rec.entities for rec in predictor.predict(texts)]
    before = httpx.get(f"{server}/health").json()["stats"]

    async def fire() -> list:
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            return await asyncio.gather(*(client.post("/predict", json={"text": t}) for t in texts))

    responses = asyncio.run(fire())
    assert [r.status_code for r in responses] == [200] * len(texts)
    for r, text, ents in zip(responses, texts, expected, strict=True):
        (result,) = r.json()["results"]
        assert result["text"] == text
        assert result["entities"] == ents
        for e in result["entities"]:
            assert text[e["start"]:e["end"]] == e["text"]
    after = httpx.get(f"{server}/health").json()["stats"]
    requests = after["requests"] - before["requests"]
    batches = after["batches"] - before["batches"]
    assert requests == len(texts)
    assert batches < requests and after["largest_batch_requests"] > 1


def test_texts_tokens_and_words(server):
    r = httpx.post(f"{server}/predict", json={"texts": ["a  b", "c"], "return_words": True})
    assert r.status_code == 200
    first = r.json()["results"][0]
    assert first["words"] == ["a", "b"] and first["spans"] == [[0, 1], [3, 4]] and len(first["tags"]) == 2
    r = httpx.post(f"{server}/predict", json={"tokens": [["John", "Smith"]], "return_words": True})
    assert r.status_code == 200 and r.json()["results"][0]["words"] == ["John", "Smith"]


@pytest.mark.parametrize(
    "body, status, needle",
    [
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b"", 400, "not valid JSON"),
        (json.dumps({"txt": "x"}).encode(), 422, "txt"),
        (json.dumps({"texts": "not a list"}).encode(), 422, "texts"),
        (json.dumps({"texts": [1, 2]}).encode(), 422, "texts.0"),
        (json.dumps({"text": "a", "texts": ["b"]}).encode(), 422, "exactly one"),
        (json.dumps({}).encode(), 422, "exactly one"),
        (json.dumps({"texts": ["x"] * 9}).encode(), 413, "too many texts"),
        (json.dumps({"text": "x" * 501}).encode(), 413, "501 characters"),
        (json.dumps({"text": "x " * 3000}).encode(), 413, "too large"),
    ],
)
def test_bad_bodies_get_clear_4xx(server, body, status, needle):
    r = httpx.post(f"{server}/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    payload = r.json()
    assert "error" in payload
    assert needle in r.text


def test_json_without_content_type_and_openapi(server):
    r = httpx.post(f"{server}/predict", content=b'{"text": "John Smith"}', headers={"content-type": "text/plain"})
    assert r.status_code == 200 and r.json()["results"][0]["text"] == "John Smith"
    schema = httpx.get(f"{server}/openapi.json").json()
    assert "texts" in json.dumps(schema["paths"]["/predict"])


def test_streamed_body_over_the_limit(server):
    def chunks():
        yield b'{"text": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    r = httpx.post(f"{server}/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["error"]
