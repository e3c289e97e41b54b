"""Input no database can store and requests too large: refused at the door, as JSON naming the field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Form, UploadFile
from pydantic import BaseModel

from src.app import create_app
from src.core.config import Settings
from src.middleware.guard import MiB, body_limit

HEADER = "x-conversation-id"


class Note(BaseModel):
    text: str
    extra: dict[str, Any] = {}


def add_probe_routes(app: FastAPI) -> None:
    @app.get("/api/v1/probe/echo/{word}")
    async def echo(word: str, q: str = "") -> dict[str, str]:
        return {"word": word, "q": q}

    @app.post("/api/v1/probe/note")
    async def note(body: Note) -> Note:
        return body

    @app.post("/api/v1/probe/form")
    async def form(name: str = Form()) -> dict[str, str]:
        return {"name": name}

    @app.post("/api/v1/probe/upload")
    @body_limit(3 * MiB)
    async def upload(file: UploadFile, title: str = Form()) -> dict[str, int]:
        return {"size": len(await file.read())}


@pytest.fixture
async def guarded(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    add_probe_routes(app)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        yield client


def refused_at(response: httpx.Response) -> list[Any]:
    assert response.status_code == 422, response.text
    assert response.headers[HEADER]
    (error,) = response.json()["detail"]
    assert set(error) >= {"type", "loc", "msg"}
    return list(error["loc"])


def json_post(client: httpx.AsyncClient, raw: str) -> Any:
    return client.post("/api/v1/probe/note", content=raw.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ('{"text": "a\\u0000b"}', ["body", "text"]),
        ('{"text": "ok", "extra": {"k": ["x", "\\u0000"]}}', ["body", "extra", "k", 1]),
        ('{"text": "ok", "extra": {"k\\u0000": 1}}', ["body", "extra", "k\x00"]),
        ('{"text": "lone \\ud800 surrogate"}', ["body", "text"]),
        ('{"text": "ok", "extra": {"n": 1e400}}', ["body", "extra", "n"]),
        ('{"text": "ok", "extra": {"n": -1E+999}}', ["body", "extra", "n"]),
        ('{"text": "ok", "extra": {"n": NaN}}', ["body", "extra", "n"]),
        ('{"text": "ok", "extra": {"n": ' + "9" * 400 + ".5}}", ["body", "extra", "n"]),
    ],
)
async def test_json_a_database_cannot_store_is_a_422_naming_the_field(
    guarded: httpx.AsyncClient, raw: str, loc: list[Any]
) -> None:
    assert refused_at(await json_post(guarded, raw)) == loc


@pytest.mark.parametrize(
    "raw",
    [
        '{"text": "a backslash then u0000: \\\\u0000"}',  # the six characters, not a NUL
        '{"text": "escaped emoji \\ud83d\\ude00", "extra": {"id": "4e1234ab", "n": 1e300}}',
        '{"text": "big integers are exact", "extra": {"n": ' + "9" * 350 + "}}",
    ],
)
async def test_look_alikes_pass(guarded: httpx.AsyncClient, raw: str) -> None:
    response = await json_post(guarded, raw)
    assert response.status_code == 200, response.text


async def test_nul_in_query_path_and_forms_is_a_422_naming_the_field(guarded: httpx.AsyncClient) -> None:
    assert refused_at(await guarded.get("/api/v1/probe/echo/ok?q=a%00b")) == ["query", "q"]
    assert refused_at(await guarded.get("/api/v1/probe/echo/a%00b")) == ["path"]
    assert refused_at(await guarded.post("/api/v1/probe/form", data={"name": "a\x00b"})) == ["body", "name"]
    files = {"file": ("f.bin", b"\x00\x01binary is fine\x00")}
    multipart = await guarded.post("/api/v1/probe/upload", data={"title": "x\x00"}, files=files)
    assert refused_at(multipart) == ["body", "title"]
    uploaded = await guarded.post("/api/v1/probe/upload", data={"title": "fine"}, files=files)
    assert uploaded.json() == {"size": 17}
    assert (await guarded.get("/api/v1/probe/echo/ok?q=fine")).json() == {"word": "ok", "q": "fine"}


async def test_a_body_over_the_limit_is_a_json_413_before_it_is_read(
    guarded: httpx.AsyncClient, settings: Settings
) -> None:
    limit = settings.limits.max_body_bytes
    big = b'{"text": "' + b"a" * limit + b'"}'
    expected = {"detail": f"request body larger than {limit} bytes"}
    declared = await guarded.post("/api/v1/probe/note", content=big, headers={"content-type": "application/json"})

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    streamed = await guarded.post("/api/v1/probe/note", content=chunks(), headers={"content-type": "application/json"})
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json() == expected
        assert response.headers[HEADER]
    # An endpoint may allow more (uploads): `body_limit(...)`.
    files = {"file": ("big.bin", b"\x00" * (2 * MiB))}
    assert (await guarded.post("/api/v1/probe/upload", data={"title": "t"}, files=files)).json() == {"size": 2 * MiB}


async def test_headers_over_the_limit_are_a_json_431(guarded: httpx.AsyncClient, settings: Settings) -> None:
    limit = settings.limits.max_header_bytes
    response = await guarded.get("/health/live", headers={"x-filler": "a" * limit})
    assert response.status_code == 431
    assert response.json() == {"detail": f"request headers larger than {limit} bytes"}
    assert response.headers[HEADER]
