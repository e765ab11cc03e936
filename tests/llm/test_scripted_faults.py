"""Every fault the scripted server injects, as the official SDKs see it: the exception a gateway will catch."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Literal

import anthropic
import httpx2
import openai
import pytest

from app.llm.scripted import (
    CutStream,
    GarbageChunk,
    Hang,
    HttpError,
    MalformedJson,
    Outcome,
    Reply,
    Script,
    ScriptedServer,
    StreamError,
)
from tests.llm.conftest import API_KEY

Api = Literal["openai", "anthropic"]
USER: list[Any] = [{"role": "user", "content": "Hello"}]
TEXT = Reply(text="abcdefghijkl", chunk_size=4)


def ask(
    server: ScriptedServer,
    api: Api,
    *,
    stream: bool,
    received: list[str] | None = None,
    timeout: float = 5,
    max_retries: int = 0,
) -> str:
    """One request to model ``faulty`` with the SDK of ``api``; streamed text lands in ``received`` as it comes."""
    received = [] if received is None else received
    if api == "openai":
        with openai.OpenAI(
            base_url=server.openai_base_url, api_key=API_KEY, timeout=timeout, max_retries=max_retries
        ) as client:
            if not stream:
                return client.chat.completions.create(model="faulty", messages=USER).choices[0].message.content or ""
            for chunk in client.chat.completions.create(model="faulty", messages=USER, stream=True):
                if chunk.choices and chunk.choices[0].delta.content:
                    received.append(chunk.choices[0].delta.content)
            return "".join(received)
    with anthropic.Anthropic(
        base_url=server.anthropic_base_url, api_key=API_KEY, timeout=timeout, max_retries=max_retries
    ) as claude:
        if not stream:
            message = claude.messages.create(model="faulty", max_tokens=100, messages=USER)
            return "".join(b.text for b in message.content if b.type == "text")
        with claude.messages.stream(model="faulty", max_tokens=100, messages=USER) as events:
            received.extend(events.text_stream)
        return "".join(received)


def script(server: ScriptedServer, *outcomes: Outcome) -> None:
    server.register("faulty", Script.sequence(*outcomes) if len(outcomes) > 1 else Script.always(outcomes[0]))


STATUS_ERRORS = [
    (HttpError(status=401, message="key revoked"), openai.AuthenticationError, anthropic.AuthenticationError),
    (HttpError(status=403), openai.PermissionDeniedError, anthropic.PermissionDeniedError),
    (HttpError(status=429, message="slow down"), openai.RateLimitError, anthropic.RateLimitError),
    (HttpError(status=500, message="boom"), openai.InternalServerError, anthropic.InternalServerError),
    (HttpError(status=503), openai.InternalServerError, anthropic.ServiceUnavailableError),
    (HttpError(status=529), openai.InternalServerError, anthropic.OverloadedError),
]


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(
    ("fault", "openai_error", "anthropic_error"), STATUS_ERRORS, ids=lambda v: getattr(v, "status", "")
)
def test_error_statuses_raise_the_sdks_status_errors(
    server: ScriptedServer,
    api: Api,
    stream: bool,
    fault: HttpError,
    openai_error: type[Exception],
    anthropic_error: type[Exception],
) -> None:
    script(server, fault)
    with pytest.raises(openai_error if api == "openai" else anthropic_error) as raised:
        ask(server, api, stream=stream)
    assert isinstance(raised.value, openai.APIStatusError | anthropic.APIStatusError)
    assert raised.value.status_code == fault.status
    if fault.message:
        assert fault.message in str(raised.value)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_rate_limits_say_when_to_retry_and_a_retry_gets_the_next_turn(server: ScriptedServer, api: Api) -> None:
    script(server, HttpError(status=429, retry_after=2))
    with pytest.raises((openai.RateLimitError, anthropic.RateLimitError)) as raised:
        ask(server, api, stream=False)
    headers = raised.value.response.headers
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("2", "2000")

    script(server, HttpError(status=429, retry_after=0.05), Reply(text="after the wait"))
    server.clear_requests()
    assert ask(server, api, stream=True, max_retries=1) == "after the wait"
    assert len(server.requests) == 2


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_x_should_retry_false_stops_the_sdks_retries(server: ScriptedServer, api: Api) -> None:
    script(server, HttpError(status=500, should_retry=False), Reply(text="never reached"))
    with pytest.raises((openai.InternalServerError, anthropic.InternalServerError)):
        ask(server, api, stream=False, max_retries=2)
    assert len(server.requests) == 1


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_malformed_json_fails_to_decode(server: ScriptedServer, api: Api, stream: bool) -> None:
    script(server, MalformedJson())
    with pytest.raises(json.JSONDecodeError):
        ask(server, api, stream=stream)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_garbage_chunk_breaks_a_stream_after_good_ones(server: ScriptedServer, api: Api) -> None:
    server.register("faulty", Script.always(GarbageChunk(after_chunks=4, reply=TEXT)))
    received: list[str] = []
    with pytest.raises(json.JSONDecodeError):
        ask(server, api, stream=True, received=received)
    assert received and received[0] == "abcd"


# Mid-stream, the anthropic SDK lets httpx2's transport errors through unwrapped (its Stream does not catch
# them, unlike openai's), so a gateway must catch both.
MID_STREAM_BREAK = {"openai": openai.APIConnectionError, "anthropic": httpx2.RemoteProtocolError}
MID_STREAM_TIMEOUT = {"openai": openai.APITimeoutError, "anthropic": httpx2.ReadTimeout}


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_cut_stream_is_a_connection_error_after_the_first_chunks(server: ScriptedServer, api: Api) -> None:
    server.register("faulty", Script.always(CutStream(after_chunks=4, reply=TEXT)))
    received: list[str] = []
    with pytest.raises(MID_STREAM_BREAK[api]):
        ask(server, api, stream=True, received=received)
    assert received and received[0] == "abcd"


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_body_cut_halfway_is_a_connection_error(server: ScriptedServer, api: Api) -> None:
    server.register("faulty", Script.always(CutStream(reply=TEXT)))
    with pytest.raises((openai.APIConnectionError, anthropic.APIConnectionError)):
        ask(server, api, stream=False)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_an_error_event_mid_stream(server: ScriptedServer, api: Api) -> None:
    server.register("faulty", Script.always(StreamError(after_chunks=4, message="overloaded mid-way", reply=TEXT)))
    received: list[str] = []
    with pytest.raises((openai.APIError, anthropic.APIStatusError), match="overloaded mid-way"):
        ask(server, api, stream=True, received=received)
    assert received == ["abcd"] if api == "anthropic" else received == ["abcd", "efgh", "ijkl"]

    with pytest.raises((openai.InternalServerError, anthropic.InternalServerError)):
        ask(server, api, stream=False)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_server_that_never_answers_times_out(server: ScriptedServer, api: Api, stream: bool) -> None:
    server.register("faulty", Script.always(Hang()))
    started = time.monotonic()
    with pytest.raises((openai.APITimeoutError, anthropic.APITimeoutError)):
        ask(server, api, stream=stream, timeout=0.5)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_stream_that_stalls_times_out_after_its_first_chunks(server: ScriptedServer, api: Api) -> None:
    server.register("faulty", Script.always(Hang(after_chunks=4, reply=TEXT)))
    received: list[str] = []
    with pytest.raises(MID_STREAM_TIMEOUT[api]):
        ask(server, api, stream=True, received=received, timeout=0.5)
    assert received and received[0] == "abcd"


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_slow_answers_arrive_late_but_whole(server: ScriptedServer, api: Api) -> None:
    server.register("faulty", Script.sequence(Hang(seconds=0.3, reply=TEXT), Reply(text="later", delay=0.3)))
    started = time.monotonic()
    assert ask(server, api, stream=False) == "abcdefghijkl"
    assert ask(server, api, stream=True) == "later"
    assert time.monotonic() - started >= 0.6

    server.register("faulty", Script.always(Reply(text="abcdefghijkl", chunk_size=4, chunk_delay=0.1)))
    started = time.monotonic()
    assert ask(server, api, stream=True) == "abcdefghijkl"
    assert time.monotonic() - started >= 0.3


def test_stopping_the_server_ends_a_hanging_answer() -> None:
    server = ScriptedServer(api_key=API_KEY).start()
    server.register("faulty", Script.always(Hang()))
    errors: list[Exception] = []

    def call() -> None:
        try:
            ask(server, "openai", stream=False, timeout=30)
        except Exception as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while not server.requests:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    caller.join(10)
    assert time.monotonic() - started < 3
    assert errors and isinstance(errors[0], openai.APIStatusError | openai.APIConnectionError)
