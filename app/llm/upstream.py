"""Calling a workspace's provider with its official SDK, and reading its answer back as OpenAI's.

* An OpenAI-compatible provider gets the caller's request as it came (the model name swapped for the provider's,
  usage asked for when streaming), through ``openai``'s ``with_streaming_response``: the SDK makes the call
  (auth, errors), and its answer's bytes are relayed event by event as they arrive, read on the way for usage,
  tool calls and the stop reason. Nothing is re-encoded on the hot path.
* An Anthropic provider gets the request translated (:mod:`app.llm.translate`) through ``anthropic``; its events
  are translated back into OpenAI chunks.

Every way a provider can fail (an error status, a timeout, a dropped connection, malformed JSON, an error
event mid-stream, including httpx2's own exceptions, which the SDKs let through once a stream has started)
becomes a :class:`GatewayError` with the provider's own message, never its key.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any, cast

import anthropic
import anthropic.types
import httpx2
import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from app.llm.directory import Route
from app.llm.metering import Meter
from app.llm.translate import StreamTranslator, completion_from, to_anthropic
from app.llm.wire import DONE, EventSplitter, GatewayError, event_data, no_retry, provider_message

_RELAYED_HEADERS = ("retry-after", "retry-after-ms")
# Tells the openai client to hand back its response unread (the header ``with_streaming_response`` sets).
RAW_RESPONSE = "X-Stainless-Raw-Response"


def scrub(text: str, route: Route) -> str:
    """Never let a provider's key through, whatever the provider echoes back."""
    key = route.provider.key
    if key and len(key) >= 8 and key in text:
        text = text.replace(key, "[redacted]")
    return text


def failure(error: BaseException, route: Route, timeout: float) -> GatewayError:
    """What the caller is told when the provider failed (``error`` from the SDK or httpx2)."""
    label = f"{route.provider.label} ({route.provider.slug})"
    if isinstance(error, openai.APIStatusError | anthropic.APIStatusError):
        status = error.status_code
        message = scrub(provider_message(error.body, str(error)), route)[:800]
        headers = {name: error.response.headers[name] for name in _RELAYED_HEADERS if name in error.response.headers}
        if status < 400:  # an error event inside a stream that had begun well
            return GatewayError(
                502, f"{label} reported an error mid-answer: {message}", "provider_error", "provider_error"
            )
        if status in (400, 404, 409, 413, 422):
            return GatewayError(status, f"{label} refused the request ({status}): {message}", code="provider_rejected")
        if status in (401, 403):
            text = (
                f"{label} refused this workspace's key ({status}): {message}. "
                "An admin can replace it on the LLM providers page."
            )
            return no_retry(GatewayError(502, text, "provider_error", "provider_auth_failed"))
        if status == 429:
            text = f"{label} is rate limiting this workspace (429): {message}"
            return GatewayError(429, text, "rate_limit_error", "provider_rate_limited", headers=headers)
        if status == 402:
            return no_retry(
                GatewayError(502, f"{label} wants payment (402): {message}", "provider_error", "provider_billing")
            )
        return GatewayError(
            502, f"{label} failed ({status}): {message}", "provider_error", "provider_error", headers=headers
        )
    if isinstance(error, openai.APITimeoutError | anthropic.APITimeoutError | httpx2.TimeoutException | TimeoutError):
        return GatewayError(504, f"{label} did not answer within {timeout:g} s.", "provider_error", "provider_timeout")
    if isinstance(error, openai.APIError | anthropic.APIError):
        # An error event in the middle of a stream (no status of its own), or a connection that failed.
        message = scrub(provider_message(error.body, error.message), route)[:800]
        if isinstance(error, openai.APIConnectionError | anthropic.APIConnectionError):
            cause = error.__cause__ or error.__context__
            detail = f"{type(cause).__name__}: {cause}" if cause else message
            return GatewayError(
                502,
                f"{label} could not be reached: {scrub(detail, route)[:300]}",
                "provider_error",
                "provider_unreachable",
            )
        return GatewayError(502, f"{label} reported an error: {message}", "provider_error", "provider_error")
    if isinstance(error, json.JSONDecodeError | UnicodeDecodeError):
        return GatewayError(502, f"{label} sent malformed JSON: {error}", "provider_error", "provider_malformed")
    if isinstance(error, httpx2.HTTPError | httpx2.StreamError):
        detail = scrub(f"{type(error).__name__}: {error}", route)[:300]
        return GatewayError(502, f"{label}'s answer broke off: {detail}", "provider_error", "provider_broken_stream")
    detail = scrub(f"{type(error).__name__}: {error}", route)[:300]
    return GatewayError(502, f"{label} failed: {detail}", "provider_error", "provider_error")


class Upstream:
    """One call to a provider. ``open()`` sends it (an error status raises here, before any byte reaches the
    caller); then ``events()`` (streaming) or ``body()`` gives the answer in OpenAI's format."""

    def __init__(self, route: Route, body: dict[str, Any], meter: Meter, *, stream: bool, timeout: float) -> None:
        self.route = route
        self.body = body
        self.meter = meter
        self.stream = stream
        self.timeout = timeout
        self.include_usage = False
        self._exits = AsyncExitStack()
        self._response: Any = None

    async def open(self) -> None:
        try:
            if self.route.provider.kind == "anthropic":
                await self._open_anthropic()
            else:
                await self._open_openai()
        except GatewayError:
            await self.close()
            raise
        except Exception as error:
            await self.close()
            raise failure(error, self.route, self.timeout) from error

    async def close(self) -> None:
        await self._exits.aclose()

    # -- OpenAI-compatible: relayed -----------------------------------------------------------------------------

    async def _open_openai(self) -> None:
        body = dict(self.body)
        body["model"] = self.route.model
        if self.stream:
            options = body.get("stream_options")
            options = dict(options) if isinstance(options, dict) else {}
            self.include_usage = bool(options.get("include_usage"))
            options["include_usage"] = True  # for the meter, whatever the caller asked
            body["stream_options"] = options
        client = cast(openai.AsyncOpenAI, self.route.client)
        # The client's own request (auth, error statuses, timeouts), with the body as the caller sent it: the
        # typed ``chat.completions.create`` would first walk the whole conversation against its parameter types,
        # ~11 ms for a 16 KB conversation. Its response is left unread (what ``with_streaming_response`` does).
        # Typed as the parsed answer; with the raw-response header it is the unread ``AsyncAPIResponse``.
        response: Any = await client.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            options={"headers": {RAW_RESPONSE: "stream"}},
            stream=self.stream,
            stream_cls=openai.AsyncStream[ChatCompletionChunk],
        )
        self._exits.push_async_callback(response.close)
        self._response = response

    async def _openai_events(self) -> AsyncIterator[bytes]:
        splitter = EventSplitter()
        meter = self.meter
        key = self.route.provider.key.encode() if len(self.route.provider.key) >= 8 else b""
        async for data in self._response.iter_bytes():
            # The events of one read go out together: one write to the caller per read, not per event.
            out: list[bytes] = []
            try:
                for event in splitter.feed(data):
                    payload = event_data(event)
                    if payload is None:
                        continue
                    if payload.strip() == b"[DONE]":
                        if out:
                            yield b"".join(out)
                        return
                    if self._relay(payload, meter):
                        if key and key in event:
                            event = event.replace(key, b"[redacted]")
                        out.append(event + b"\n\n")
            except Exception:
                if out:
                    yield b"".join(out)
                raise
            if out:
                yield b"".join(out)
        if splitter.rest().strip():
            json.loads(event_data(splitter.rest()) or b"")  # a half event at the end: malformed, or cut
        raise httpx2.RemoteProtocolError("the stream ended without [DONE]")

    def _relay(self, payload: bytes, meter: Meter) -> bool:
        """Read one chunk for the meter; whether the caller gets it. Raises for malformed JSON and error events."""
        chunk = json.loads(payload)
        if not isinstance(chunk, dict):
            raise json.JSONDecodeError("a stream chunk is not a JSON object", payload.decode(errors="replace"), 0)
        if chunk.get("error"):
            request = self._response.http_response.request
            raise openai.APIError(provider_message(chunk, "an error event"), request, body=chunk["error"])
        choices = chunk.get("choices")
        for choice in choices or ():
            meter.openai_choice(choice)
        usage = chunk.get("usage")
        if usage:
            meter.openai_usage(usage)
            if not self.include_usage and not choices:
                return False  # the usage chunk the caller did not ask for
        return True

    async def _openai_body(self) -> bytes:
        raw: bytes = await self._response.read()
        completion = json.loads(raw)
        if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
            raise json.JSONDecodeError("the answer is not a chat completion", raw.decode(errors="replace")[:200], 0)
        for choice in completion["choices"]:
            self.meter.openai_choice(choice, "message")
        self.meter.openai_usage(completion.get("usage"))
        self.meter.token()
        text = raw.decode()
        return scrub(text, self.route).encode() if self.route.provider.key in text else raw

    # -- Anthropic: translated ----------------------------------------------------------------------------------

    async def _open_anthropic(self) -> None:
        arguments = to_anthropic(self.body, self.route.model)
        client = cast(anthropic.AsyncAnthropic, self.route.client)
        # As for OpenAI: the client's own request, without the typed method's walk over the conversation.
        if self.stream:
            options = self.body.get("stream_options")
            self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            stream = await client.post(
                "/v1/messages",
                body={**arguments, "stream": True},
                cast_to=anthropic.types.Message,
                stream=True,
                stream_cls=anthropic.AsyncStream[anthropic.types.RawMessageStreamEvent],
            )
            self._response = await self._exits.enter_async_context(stream)
        else:
            self._response = await client.post("/v1/messages", body=arguments, cast_to=anthropic.types.Message)

    async def _anthropic_events(self) -> AsyncIterator[bytes]:
        translator = StreamTranslator(self.route.model, include_usage=self.include_usage)
        meter = self.meter
        stopped = False
        async for event in self._response:
            kind = getattr(event, "type", None)
            if kind == "message_start":
                meter.anthropic_usage(event.message.usage)
            elif kind == "content_block_start" and getattr(event.content_block, "type", None) == "tool_use":
                meter.tool_call_ids.add((0, event.index))
                meter.token()
            elif kind == "content_block_delta":
                meter.token()
            elif kind == "message_delta":
                meter.anthropic_usage(event.usage)
            elif kind == "message_stop":
                stopped = True
            for frame in translator.feed(event):
                yield frame
        if not stopped:
            raise httpx2.RemoteProtocolError("the stream ended without message_stop")
        meter.stop_reason = translator.finish_reason

    def _anthropic_body(self) -> bytes:
        message = self._response
        meter = self.meter
        meter.anthropic_usage(message.usage)
        meter.token()
        completion = completion_from(message, self.route.model)
        choice = completion["choices"][0]
        meter.stop_reason = choice["finish_reason"]
        meter.tool_call_ids.update((0, index) for index, _ in enumerate(choice["message"].get("tool_calls") or ()))
        return scrub(json.dumps(completion), self.route).encode()

    # -- both -----------------------------------------------------------------------------------------------

    def events(self) -> AsyncIterator[bytes]:
        """The answer's OpenAI chunk events (without ``[DONE]``); raises the provider's failure as it happens."""
        return self._anthropic_events() if self.route.provider.kind == "anthropic" else self._openai_events()

    async def answer(self) -> bytes:
        try:
            if self.route.provider.kind == "anthropic":
                return self._anthropic_body()
            return await self._openai_body()
        except GatewayError:
            raise
        except Exception as error:
            raise failure(error, self.route, self.timeout) from error
        finally:
            await self.close()


__all__ = ["DONE", "Upstream", "failure", "scrub"]
