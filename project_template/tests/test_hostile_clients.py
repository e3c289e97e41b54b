"""Hostile and unusual clients against the real server: fuzzing, oversized bodies, oversized headers.

schemathesis generates requests from the app's own OpenAPI schema, valid and
invalid (NUL bytes, huge numbers, wrong types, missing fields), for every
operation of every module, once anonymous and once with an admin token. Each
answer must be no 5xx and, where the schema documents its status, match it.
Bounded so the suite stays fast: `FUZZ_EXAMPLES` examples per operation and mode
(default 8), a fixed seed (`FUZZ_SEED`) so a failure reproduces.

The figures (operations, requests, 5xx, largest body refused, memory under ten
oversized bodies at once) are printed as `name: value` lines; docs/hardening.md
records a run.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from src.core.config import load_settings
from tests.auth_helpers import auth_headers
from tests.live_server import LiveServer, live_server, report

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
SEED = int(os.environ.get("FUZZ_SEED", "20261207"))
OVERSIZED = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live")) as running:
        yield running


def fuzz(server: LiveServer, headers: dict[str, str]) -> dict[str, Any]:
    """Every operation, positive and negative examples; returns counts and the failures found."""
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    session = requests.Session()
    counts: dict[str, Any] = {"operations": 0, "requests": 0, "server_errors": 0, "failures": []}
    checks = [not_a_server_error, response_schema_conformance]
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the schema is the app's own: every operation loads
        operation = result.ok()
        counts["operations"] += 1
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            )
            def run(case: Any) -> None:  # a schemathesis.Case
                response = case.call(base_url=server.base_url, session=session, headers=headers, timeout=30)
                counts["requests"] += 1
                counts["server_errors"] += response.status_code >= 500
                try:
                    case.validate_response(response, checks=checks, headers=headers)
                except (AssertionError, BaseExceptionGroup) as failure:  # one check failed, or several
                    counts["failures"].append(f"{case.method} {case.path} -> {response.status_code}: {failure}"[:2000])

            try:
                hypothesis.seed(SEED)(run)()
            except hypothesis.errors.Unsatisfiable:
                if mode is schemathesis.GenerationMode.POSITIVE:
                    raise  # only an operation without any input has no invalid example
    return counts


@pytest.mark.parametrize("who", ["anonymous", "admin"])
def test_fuzzed_api_never_fails_and_matches_its_schema(
    server: LiveServer, who: str, capsys: pytest.CaptureFixture[str]
) -> None:
    headers = auth_headers(roles=["admin"], username="fuzzer") if who == "admin" else {}
    counts = fuzz(server, headers)
    report(
        capsys,
        **{
            f"fuzz_{who}_operations": counts["operations"],
            f"fuzz_{who}_requests": counts["requests"],
            f"fuzz_{who}_5xx": counts["server_errors"],
            f"fuzz_{who}_failures": len(counts["failures"]),
        },
    )
    assert counts["operations"] >= 3
    assert counts["server_errors"] == 0, "\n".join(counts["failures"][:10])
    assert counts["failures"] == [], "\n".join(counts["failures"][:10])


def body_path(server: LiveServer) -> str:
    """An operation that reads a body, a public one if there is (the worst case: no token needed)."""
    paths = httpx.get(f"{server.base_url}/openapi.json").json()["paths"]
    taking = [
        (bool(operation.get("security")), path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if method == "post" and "requestBody" in operation and "{" not in path
    ]
    if not taking:
        pytest.skip("no operation of this project takes a body")
    return str(min(taking)[1])


async def post_oversized(server: LiveServer, path: str, limit: int, *, chunked: bool) -> tuple[int, bytes, bytes]:
    """POST an oversized body over a raw connection; (status, headers, body) of the answer.

    Declared with Content-Length, the server must answer from the headers alone: nothing
    of the body is sent. Chunked, exactly `limit + 1` bytes are sent (the last chunk left
    open), which the server has to read before it can refuse. The client then waits: a
    client sending on after the refusal only races the server's close (a reset that can
    swallow the answer), which is the network's behaviour, not the app's.
    """
    address = server.base_url.removeprefix("http://")
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {OVERSIZED}"
    head = f"POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    writer.write(f"{head}{framing}\r\n\r\n".encode())
    if chunked:
        sizes = [limit // 4] * 4 + [limit + 1 - 4 * (limit // 4)]
        writer.write(b"".join(f"{size:x}\r\n".encode() + b"x" * size + b"\r\n" for size in sizes[:-1]))
        writer.write(f"{sizes[-1]:x}\r\n".encode() + b"x" * sizes[-1])
    await writer.drain()
    status_and_headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    status = int(status_and_headers.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in status_and_headers.lower().splitlines()
        if line.startswith(b"content-length:")
    )
    body = await asyncio.wait_for(reader.readexactly(length), 30)
    writer.close()
    return status, status_and_headers.lower(), body


def test_ten_oversized_bodies_at_once_are_refused_before_they_are_read(
    server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    limit = load_settings().limits.max_body_bytes
    path = body_path(server)
    before, _ = server.rss_kib()

    async def send_all(chunked: bool) -> list[tuple[int, bytes, bytes]]:
        return await asyncio.gather(*(post_oversized(server, path, limit, chunked=chunked) for _ in range(10)))

    answers = [*asyncio.run(send_all(chunked=False)), *asyncio.run(send_all(chunked=True))]
    after, peak = server.rss_kib()
    report(
        capsys,
        largest_body_refused_bytes=OVERSIZED,
        body_limit_bytes=limit,
        rss_before_oversized_kib=before,
        rss_after_10_oversized_kib=after,
        rss_peak_kib=peak,
    )
    assert {status for status, _, _ in answers} == {413}, [body for _, _, body in answers]
    expected = {"detail": f"request body larger than {limit} bytes"}
    assert all(json.loads(body) == expected for _, _, body in answers)
    assert all(b"\r\nx-conversation-id: " in headers for _, headers, _ in answers)
    # Twenty refused bodies, ten of 50 MiB: none buffered, the server grows by far less than one of them.
    assert after - before < OVERSIZED // 1024 // 2, (before, after)


def test_oversized_headers_are_refused_with_431(server: LiveServer) -> None:
    limit = load_settings().limits.max_header_bytes
    response = httpx.get(f"{server.base_url}/health/live", headers={"x-filler": "a" * (limit + 1)})
    assert response.status_code == 431
    assert response.json() == {"detail": f"request headers larger than {limit} bytes"}
    assert httpx.get(f"{server.base_url}/health/live", headers={"x-filler": "a" * (limit // 2)}).status_code == 200


def test_the_server_log_holds_no_traceback(server: LiveServer) -> None:
    log = Path(server.log).read_text()
    assert "Traceback" not in log, log[-3000:]
