"""A small HTTP server for a trained or exported model (FastAPI + uvicorn).

    tokclf serve --model outputs/wnut16-minilm [--host 127.0.0.1] [--port 8000]

Endpoints:
    POST /predict  {"texts": ["...", ...]} or {"text": "..."} or {"tokens": [["w1", "w2"], ...]},
                   optional "return_words": true (also words, spans, tags and scores per text).
                   -> {"results": [{"text": ..., "entities": [{type, text, start, end, score, words}]}]}
                   (entities exactly as `tokclf predict` gives them; offsets index the text sent).
    GET  /health   {"status": "ok", model, backend, precision, labels, limits, stats}

Concurrent requests are batched: a worker takes the first waiting request, keeps collecting for
up to `batch_wait_ms` (or until `batch_tokens` estimated tokens / `batch_texts` texts), runs them
as one length-sorted batch in a worker thread (the event loop keeps accepting requests meanwhile),
and hands each request its own results.

Limits, with clear errors: a body over `max_body_bytes` -> 413; more than `max_texts` texts or a
text over `max_text_chars` characters -> 413; a body that is not JSON -> 400; JSON of the wrong
shape -> 422 naming the field. Errors are {"error": message, "detail": [...]}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import (
    Request,  # module level: FastAPI resolves endpoint annotations here
)

log = logging.getLogger("tokclf")


@dataclass
class ServeSettings:
    max_body_bytes: int = 1 << 20
    max_texts: int = 256
    max_text_chars: int = 100_000
    batch_wait_ms: float = 5.0
    batch_tokens: int = 16_384
    batch_texts: int = 512


def _estimate_tokens(item: Any) -> int:
    # About four characters per subword piece; the exact count is only known after tokenizing.
    if item.words is not None:
        return 2 + sum(len(w) for w in item.words) // 4 + len(item.words) // 2
    return 2 + len(item.text or "") // 4


class Batcher:
    """Collects concurrent requests into one model run (see module docstring)."""

    def __init__(self, predictor: Any, settings: ServeSettings) -> None:
        self.predictor = predictor
        self.settings = settings
        self.queue: asyncio.Queue[tuple[list[Any], asyncio.Future]] | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokclf-model")
        self.stats = {"requests": 0, "texts": 0, "batches": 0, "largest_batch_requests": 0}
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: list[Any]) -> list[Any]:
        assert self.queue is not None, "Batcher.start() was not called"
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self.queue.put((items, future))
        return await future

    async def _run(self) -> None:
        assert self.queue is not None
        loop = asyncio.get_running_loop()
        wait = self.settings.batch_wait_ms / 1000.0
        while True:
            pending = [await self.queue.get()]
            tokens = sum(_estimate_tokens(i) for i in pending[0][0])
            texts = len(pending[0][0])
            deadline = loop.time() + wait
            while tokens < self.settings.batch_tokens and texts < self.settings.batch_texts:
                try:
                    if self.queue.empty():
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            break
                        nxt = await asyncio.wait_for(self.queue.get(), remaining)
                    else:
                        nxt = self.queue.get_nowait()
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                pending.append(nxt)
                tokens += sum(_estimate_tokens(i) for i in nxt[0])
                texts += len(nxt[0])
            pending = [(items, fut) for items, fut in pending if not fut.done()]  # clients that left
            if not pending:
                continue
            items = [item for request, _ in pending for item in request]
            self.stats["batches"] += 1
            self.stats["requests"] += len(pending)
            self.stats["texts"] += len(items)
            self.stats["largest_batch_requests"] = max(self.stats["largest_batch_requests"], len(pending))
            try:
                records = await loop.run_in_executor(self.executor, self.predictor.predict, items)
            except Exception as exc:  # the model failed: every waiting request gets the error
                log.exception("prediction failed")
                for _, fut in pending:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            pos = 0
            for request, fut in pending:
                part = records[pos:pos + len(request)]
                pos += len(request)
                if not fut.done():
                    fut.set_result(part)


class BodyLimit:
    """ASGI middleware: 413 for bodies over `max_bytes` (by Content-Length, or while streaming)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send, int(length))
            return
        # Read the whole body first (it is small by definition), so that a body over the limit
        # is refused before the app sees any of it, whatever the framework does with errors.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._reject(send, received, streamed=True)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Any, size: int, streamed: bool = False) -> None:
        said = f"more than {self.max_bytes} bytes" if streamed else f"{size} bytes"
        body = json.dumps({
            "error": f"request body too large: {said}, the limit is {self.max_bytes}",
            "detail": [{"field": "body", "message": "send fewer or shorter texts per request, or start the server "
                        "with a larger --max-body-bytes"}],
        }).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class PredictRequest(BaseModel):
    """Body of POST /predict (module level, so FastAPI can resolve the annotation)."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, description="one raw text")
    texts: list[str] | None = Field(default=None, description="raw texts")
    tokens: list[list[str]] | None = Field(default=None, description="pre-split sentences (lists of words)")
    return_words: bool = Field(default=False, description="also return words, spans, tags and scores")

    @model_validator(mode="after")
    def one_input(self) -> PredictRequest:
        given = [k for k in ("text", "texts", "tokens") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of 'text', 'texts' or 'tokens' (got {', '.join(given) or 'none'})")
        return self


def create_app(predictor: Any, settings: ServeSettings | None = None) -> Any:
    """The ASGI app serving `predictor` (a `tokclf.inference.predictor.Predictor`)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from tokclf.inference.records import PredictionInput

    settings = settings or ServeSettings()
    batcher = Batcher(predictor, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="tokclf", description="Token classification (NER/POS) with a tokclf model.", lifespan=lifespan)
    app.state.batcher = batcher

    def error(status: int, message: str, detail: list[dict[str, Any]] | None = None) -> JSONResponse:
        return JSONResponse({"error": message, "detail": detail or []}, status_code=status)

    def invalid(problems: list[dict[str, Any]]) -> JSONResponse:
        detail = [{"field": ".".join(str(x) for x in p.get("loc", ()) if x != "body") or "body",
                   "message": p.get("msg", "invalid")} for p in problems]
        return error(422, 'invalid request body: expected {"texts": ["..."]}, {"text": "..."} or {"tokens": [["..."]]}',
                     detail)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid(list(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", **predictor.description,
                "limits": {"max_body_bytes": settings.max_body_bytes, "max_texts": settings.max_texts,
                           "max_text_chars": settings.max_text_chars},
                "stats": dict(batcher.stats)}

    schema = {"requestBody": {"required": True, "content": {"application/json": {"schema": PredictRequest.model_json_schema()}}}}

    @app.post("/predict", openapi_extra=schema)
    async def predict_endpoint(request: Request) -> Any:
        # The body is parsed here rather than by FastAPI so that JSON sent without a JSON
        # content type (curl -d) is accepted, and every kind of bad body gets its own message.
        from pydantic import ValidationError

        raw = await request.body()
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            return error(400, "request body is not valid JSON", [{"field": "body", "message": f"{reason}{where}"}])
        try:
            body = PredictRequest.model_validate(data)
        except ValidationError as exc:
            return invalid(exc.errors())
        if body.tokens is not None:
            items = [PredictionInput(words=list(words)) for words in body.tokens]
            sizes = [sum(len(w) + 1 for w in words) for words in body.tokens]
        else:
            texts = body.texts if body.texts is not None else [body.text or ""]
            items = [PredictionInput(text=t) for t in texts]
            sizes = [len(t) for t in texts]
        if len(items) > settings.max_texts:
            return error(413, f"too many texts in one request: {len(items)}, the limit is {settings.max_texts}",
                         [{"field": "texts", "message": "split the texts over several requests"}])
        long = [i for i, s in enumerate(sizes) if s > settings.max_text_chars]
        if long:
            return error(413, f"text {long[0]} has {sizes[long[0]]} characters, the limit is {settings.max_text_chars}",
                         [{"field": f"texts.{i}", "message": "too long"} for i in long[:10]])
        records = await batcher.submit(items)
        results = []
        for rec in records:
            out: dict[str, Any] = {"text": rec.text, "entities": rec.entities}
            if body.return_words:
                full = rec.to_dict()
                out.update({k: full[k] for k in ("words", "spans", "tags", "scores") if k in full})
            results.append(out)
        return {"results": results}

    return BodyLimit(app, settings.max_body_bytes)


class ServerThread:
    """Run an app with uvicorn in a background thread (tests, benchmarks):

        with ServerThread(app) as url:
            httpx.post(f"{url}/predict", json={"text": "..."})
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import socket

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def _stopped(signum: int, frame: Any) -> None:
    log.info("stopped by SIGTERM")
    raise SystemExit(0)


def serve(
    model: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServeSettings | None = None,
    mixed_precision: str | None = "auto",
    token_budget: int | None = None,
    log_level: str = "info",
    decoding: str | None = None,
) -> None:
    """Load the model, then serve it until interrupted (Ctrl-C) or stopped (SIGTERM: in-flight
    requests finish, then the process exits 0)."""
    import signal
    import threading

    import uvicorn

    if threading.current_thread() is threading.main_thread():
        # uvicorn shuts down gracefully on SIGTERM and then re-raises the signal under the handler
        # that was there before it; with the default one the process died of the signal (-15)
        # after a clean shutdown. This handler turns that into a normal exit.
        signal.signal(signal.SIGTERM, _stopped)

    from tokclf.inference.forward import DEFAULT_TOKEN_BUDGET
    from tokclf.inference.predictor import Predictor

    predictor = Predictor(model, mixed_precision=mixed_precision, token_budget=token_budget or DEFAULT_TOKEN_BUDGET,
                          decoding=decoding)
    predictor.predict(["warm up ."])
    app = create_app(predictor, settings)
    log.info("serving %s (%s, %s) on http://%s:%d", model, predictor.backend.name, predictor.backend.precision, host, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
