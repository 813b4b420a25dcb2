"""The plugin's HTTP/2 server side, driven by a general HTTP/2 client (h2) as grpc-go would drive it."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import pytest
from hpack import Encoder

from provider.runtime import http2

PATH = "/tfplugin6.Provider/ReadResource"


def grpc(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


class Client:
    """An h2 client connected, in memory, to a ServerConnection."""

    def __init__(self, server: http2.ServerConnection | None = None) -> None:
        self.server = server or http2.ServerConnection()
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.h2.initiate_connection()
        self.events: list[h2.events.Event] = []
        self.requests: list[tuple[int, str, bytes]] = []
        self.exchange()

    def exchange(self) -> None:
        """Move bytes both ways until neither side has anything more to say."""
        while True:
            outgoing = self.h2.data_to_send()
            if outgoing:
                requests, _ = self.server.receive(outgoing)
                self.requests += requests
            incoming = self.server.data_to_send()
            if incoming:
                for event in self.h2.receive_data(incoming):
                    self.events.append(event)
                    if isinstance(event, h2.events.DataReceived):
                        self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if not outgoing and not incoming:
                return

    def call(self, body: bytes, path: str = PATH) -> int:
        stream = self.h2.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "https"), (":path", path), (":authority", "localhost")]
        self.h2.send_headers(stream, [*headers, ("content-type", "application/grpc"), ("te", "trailers")])
        payload = grpc(body)
        while payload:
            size = min(
                self.h2.local_flow_control_window(stream), self.h2.max_outbound_frame_size, len(payload)
            )
            if size == 0:
                self.exchange()
                continue
            chunk, payload = payload[:size], payload[size:]
            self.h2.send_data(stream, chunk, end_stream=not payload)
        self.exchange()
        return stream

    def answer(self, stream: int) -> tuple[list[tuple[str, str]], bytes, dict[str, str]]:
        """(headers, body, trailers) the client received on a stream."""
        blocks = [
            dict(e.headers)
            for e in self.events
            if isinstance(e, h2.events.ResponseReceived | h2.events.TrailersReceived)
            and e.stream_id == stream
        ]
        body = b"".join(
            e.data for e in self.events if isinstance(e, h2.events.DataReceived) and e.stream_id == stream
        )
        ended = any(isinstance(e, h2.events.StreamEnded) and e.stream_id == stream for e in self.events)
        assert ended, "the stream has not ended"
        return list(blocks[0].items()), body, blocks[-1]


def test_a_unary_call_is_answered_with_headers_one_message_and_ok_trailers() -> None:
    client = Client()
    stream = client.call(b"request")
    assert client.requests == [(stream, PATH, grpc(b"request"))]
    client.server.respond(stream, b"response")
    client.exchange()
    headers, body, trailers = client.answer(stream)
    assert dict(headers)[":status"] == "200" and dict(headers)["content-type"] == "application/grpc"
    assert body == grpc(b"response")
    assert trailers["grpc-status"] == "0"
    assert client.server.idle


def test_large_requests_and_answers_respect_both_sides_flow_control() -> None:
    client = Client()
    big = bytes(range(256)) * 4096  # 1 MiB: beyond every default window and frame size
    stream = client.call(big)
    assert client.requests == [(stream, PATH, grpc(big))]
    client.server.respond(stream, big[::-1])
    client.exchange()
    _, body, trailers = client.answer(stream)
    assert body == grpc(big[::-1]) and trailers["grpc-status"] == "0"


def test_an_answer_larger_than_the_clients_window_waits_for_its_window_updates() -> None:
    client = Client()
    stream = client.call(b"")
    client.server.respond(stream, b"x" * 200_000)
    first = client.server.data_to_send()
    # Without the client's WINDOW_UPDATE only its initial 65,535 bytes may go out.
    sent = sum(
        e.flow_controlled_length
        for e in client.h2.receive_data(first)
        if isinstance(e, h2.events.DataReceived)
    )
    assert sent == 65_535 and not client.server.idle
    client.h2.acknowledge_received_data(sent, stream)
    client.exchange()
    assert client.server.idle


def test_a_failed_call_is_a_trailers_only_answer_with_an_escaped_message() -> None:
    client = Client()
    stream = client.call(b"")
    client.server.respond_status(stream, 13, "KeyError: 'é' 100%")
    client.exchange()
    headers, body, _ = client.answer(stream)
    assert body == b""
    assert dict(headers)["grpc-status"] == "13"
    assert dict(headers)["grpc-message"] == "KeyError%3A %27%C3%A9%27 100%25"


def test_interleaved_calls_are_told_apart_and_answered_in_any_order() -> None:
    client = Client()
    first = client.call(b"one")
    second = client.call(b"two", path="/tfplugin6.Provider/PlanResourceChange")
    assert [r[:2] for r in client.requests] == [
        (first, PATH),
        (second, "/tfplugin6.Provider/PlanResourceChange"),
    ]
    client.server.respond(second, b"2")
    client.server.respond(first, b"1")
    client.exchange()
    assert client.answer(first)[1] == grpc(b"1") and client.answer(second)[1] == grpc(b"2")


def test_pings_are_answered_and_a_reset_stream_gets_no_answer() -> None:
    client = Client()
    client.h2.ping(b"12345678")
    stream = client.call(b"")
    client.h2.reset_stream(stream)
    client.exchange()
    assert any(isinstance(e, h2.events.PingAckReceived) and e.ping_data == b"12345678" for e in client.events)
    client.server.respond(stream, b"late")
    assert client.server.data_to_send() == b""


def test_padded_frames_and_header_blocks_split_into_continuation_frames_are_read() -> None:
    server = http2.ServerConnection()
    block = Encoder().encode([(":method", "POST"), (":path", PATH), ("x-long", "v" * 5000)])
    wire = http2.PREFACE + http2.frame(http2.SETTINGS, 0, 0)
    wire += http2.frame(http2.HEADERS, http2.PADDED, 1, bytes([3]) + block[:100] + b"\0\0\0")
    wire += http2.frame(http2.CONTINUATION, 0, 1, block[100:2000])
    wire += http2.frame(http2.CONTINUATION, http2.END_HEADERS, 1, block[2000:])
    wire += http2.frame(http2.DATA, http2.PADDED | http2.END_STREAM, 1, bytes([2]) + grpc(b"hi") + b"\0\0")
    # Fed a byte at a time, as a slow socket might deliver it.
    requests = [r for byte in range(len(wire)) for r in server.receive(wire[byte : byte + 1])[0]]
    assert requests == [(1, PATH, grpc(b"hi"))]


def test_what_is_not_an_http2_client_is_a_protocol_error() -> None:
    with pytest.raises(http2.ProtocolError):
        http2.ServerConnection().receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def test_a_goaway_tells_the_server_the_client_is_leaving() -> None:
    client = Client()
    client.h2.close_connection()
    _, going_away = client.server.receive(client.h2.data_to_send())
    assert going_away
