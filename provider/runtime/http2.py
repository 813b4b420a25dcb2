"""The part of HTTP/2 (RFC 9113) a unary gRPC server needs: frames, flow control, HPACK decoding.

Sans I/O: `receive` takes the bytes that came in and returns the requests they completed; `respond`
queues answers; `data_to_send` hands over what to write. Headers that come in are decoded with the hpack
package; the few this server sends are constants in HPACK's literal forms, which need no encoder state.
It replaces a general HTTP/2 library whose bookkeeping (header validation, event objects, logging
arguments built for every frame) cost most of the plugin's CPU time per call.
"""

from __future__ import annotations

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags.
DATA = 0x0
HEADERS = 0x1
RST_STREAM = 0x3
SETTINGS = 0x4
PING = 0x6
GOAWAY = 0x7
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# Settings.
INITIAL_WINDOW_SIZE = 0x4
MAX_FRAME_SIZE = 0x5

DEFAULT_WINDOW = 65_535
DEFAULT_MAX_FRAME = 16_384
MAX_WINDOW = 2**31 - 1
# Terraform's requests carry whole configurations and states: let them come in large frames, unthrottled.
OUR_MAX_FRAME = 1 << 20
# The connection's receive window is topped up once this much has arrived.
REFILL_AFTER = 1 << 24


class ProtocolError(Exception):
    """The peer broke the protocol: the connection cannot go on."""


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream_id.to_bytes(4, "big") + payload


def _integer(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """An HPACK integer (RFC 7541, 5.1) in a prefix of `prefix_bits`, the first byte's other bits `first`."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name: bytes, value: bytes) -> bytes:
    """A header as an HPACK literal without indexing, with a new name and no Huffman coding."""
    return b"\x00" + _integer(len(name), 7) + name + _integer(len(value), 7) + value


# ":status: 200" is entry 8 of HPACK's static table.
RESPONSE_HEADERS = b"\x88" + literal(b"content-type", b"application/grpc")


def trailers(status: int, message: str) -> bytes:
    """gRPC's status trailers; the message percent-encoded, as gRPC wants it."""
    block = literal(b"grpc-status", str(status).encode())
    if message:
        from urllib.parse import quote

        block += literal(b"grpc-message", quote(message, safe=" ").encode())
    return block


class ServerConnection:
    """The server's side of one HTTP/2 connection."""

    def __init__(self) -> None:
        from hpack import Decoder

        self.decoder = Decoder()
        self.inbound = bytearray()
        self.outbound = bytearray()
        self.preface_seen = False
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = DEFAULT_MAX_FRAME
        self.send_window = DEFAULT_WINDOW
        self.stream_windows: dict[int, int] = {}
        # Requests being received: stream -> [path, body].
        self.requests: dict[int, list] = {}
        # A header block waiting for its CONTINUATION frames: (stream, END_STREAM flag, fragments).
        self.header_block: tuple[int, int, bytearray] | None = None
        self.received = 0
        # Answers waiting for flow-control window: stream -> (data still to send, trailers block).
        self.pending: dict[int, tuple[memoryview, bytes]] = {}
        settings = INITIAL_WINDOW_SIZE.to_bytes(2, "big") + MAX_WINDOW.to_bytes(4, "big")
        settings += MAX_FRAME_SIZE.to_bytes(2, "big") + OUR_MAX_FRAME.to_bytes(4, "big")
        self.outbound += frame(SETTINGS, 0, 0, settings)
        self.outbound += frame(WINDOW_UPDATE, 0, 0, (MAX_WINDOW - DEFAULT_WINDOW).to_bytes(4, "big"))

    def data_to_send(self) -> bytes:
        out = bytes(self.outbound)
        self.outbound.clear()
        return out

    # receiving

    def receive(self, data: bytes) -> tuple[list[tuple[int, str, bytes]], bool]:
        """(requests completed by `data` as (stream, path, body), whether the peer is going away)."""
        self.inbound += data
        if not self.preface_seen:
            if len(self.inbound) < len(PREFACE):
                return [], False
            if self.inbound[: len(PREFACE)] != PREFACE:
                raise ProtocolError("not an HTTP/2 client connection preface")
            del self.inbound[: len(PREFACE)]
            self.preface_seen = True
        completed: list[tuple[int, str, bytes]] = []
        going_away = False
        view = memoryview(self.inbound)
        offset = 0
        try:
            while len(view) - offset >= 9:
                length = int.from_bytes(view[offset : offset + 3], "big")
                if length > OUR_MAX_FRAME:
                    raise ProtocolError(f"a frame of {length} bytes is larger than announced")
                if len(view) - offset < 9 + length:
                    break
                kind, flags = view[offset + 3], view[offset + 4]
                stream_id = int.from_bytes(view[offset + 5 : offset + 9], "big") & 0x7FFFFFFF
                payload = bytes(view[offset + 9 : offset + 9 + length])
                offset += 9 + length
                if self.header_block is not None and kind != CONTINUATION:
                    raise ProtocolError("a header block was interrupted")
                going_away = self._frame(kind, flags, stream_id, payload, completed) or going_away
        finally:
            view.release()
            del self.inbound[:offset]
        return completed, going_away

    def _frame(self, kind: int, flags: int, stream_id: int, payload: bytes, completed: list) -> bool:
        if kind == DATA:
            self._data(flags, stream_id, payload, completed)
        elif kind == HEADERS:
            start, end = self._unpad(flags, payload)
            if flags & PRIORITY_FLAG:
                start += 5
            block = bytearray(payload[start:end])
            if flags & END_HEADERS:
                self._headers(stream_id, flags & END_STREAM, bytes(block), completed)
            else:
                self.header_block = (stream_id, flags & END_STREAM, block)
        elif kind == CONTINUATION:
            if self.header_block is None or self.header_block[0] != stream_id:
                raise ProtocolError("a CONTINUATION frame without its HEADERS")
            self.header_block[2].extend(payload)
            if flags & END_HEADERS:
                stream, end_stream, block = self.header_block
                self.header_block = None
                self._headers(stream, end_stream, bytes(block), completed)
        elif kind == SETTINGS:
            if not flags & ACK:
                self._settings(payload)
        elif kind == WINDOW_UPDATE:
            increment = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if stream_id == 0:
                self.send_window += increment
            elif stream_id in self.stream_windows:
                self.stream_windows[stream_id] += increment
            self._send_pending()
        elif kind == PING:
            if not flags & ACK:
                self.outbound += frame(PING, ACK, 0, payload)
        elif kind == RST_STREAM:
            self.requests.pop(stream_id, None)
            self.pending.pop(stream_id, None)
            self.stream_windows.pop(stream_id, None)
        elif kind == GOAWAY:
            return True
        # PRIORITY, PUSH_PROMISE (never sent to a server) and unknown types are ignored, as RFC 9113 asks.
        return False

    @staticmethod
    def _unpad(flags: int, payload: bytes) -> tuple[int, int]:
        if not flags & PADDED:
            return 0, len(payload)
        if not payload or payload[0] >= len(payload):
            raise ProtocolError("padding longer than its frame")
        return 1, len(payload) - payload[0]

    def _data(self, flags: int, stream_id: int, payload: bytes, completed: list) -> None:
        self.received += len(payload)
        if self.received >= REFILL_AFTER:
            self.outbound += frame(WINDOW_UPDATE, 0, 0, self.received.to_bytes(4, "big"))
            self.received = 0
        request = self.requests.get(stream_id)
        if request is None:
            return  # a stream that was reset or answered already
        start, end = self._unpad(flags, payload)
        request[1].extend(payload[start:end])
        if flags & END_STREAM:
            self._complete(stream_id, completed)

    def _headers(self, stream_id: int, end_stream: int, block: bytes, completed: list) -> None:
        headers = self.decoder.decode(block, raw=True)
        if stream_id not in self.requests:
            path = next((value for name, value in headers if name == b":path"), b"")
            self.requests[stream_id] = [path.decode("utf-8", "replace"), bytearray()]
            self.stream_windows[stream_id] = self.peer_initial_window
        if end_stream:
            self._complete(stream_id, completed)

    def _complete(self, stream_id: int, completed: list) -> None:
        path, body = self.requests.pop(stream_id)
        completed.append((stream_id, path, bytes(body)))

    def _settings(self, payload: bytes) -> None:
        for at in range(0, len(payload) - len(payload) % 6, 6):
            setting = int.from_bytes(payload[at : at + 2], "big")
            value = int.from_bytes(payload[at + 2 : at + 6], "big")
            if setting == INITIAL_WINDOW_SIZE:
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for stream in self.stream_windows:
                    self.stream_windows[stream] += delta
            elif setting == MAX_FRAME_SIZE:
                self.peer_max_frame = value
        self.outbound += frame(SETTINGS, ACK, 0)
        self._send_pending()

    # answering

    def respond(self, stream_id: int, message: bytes) -> None:
        """Answer a unary call with one gRPC message and status OK."""
        if stream_id not in self.stream_windows:
            return  # reset by the peer meanwhile
        self.outbound += frame(HEADERS, END_HEADERS, stream_id, RESPONSE_HEADERS)
        framed = b"\x00" + len(message).to_bytes(4, "big") + message
        self.pending[stream_id] = (memoryview(framed), trailers(0, ""))
        self._send_pending()

    def respond_status(self, stream_id: int, status: int, message: str) -> None:
        """Answer with a status alone (gRPC's trailers-only response)."""
        if stream_id not in self.stream_windows:
            return
        block = RESPONSE_HEADERS + trailers(status, message)
        self.outbound += frame(HEADERS, END_HEADERS | END_STREAM, stream_id, block)
        del self.stream_windows[stream_id]

    def _send_pending(self) -> None:
        """Send what the peer's windows allow; the rest waits for its WINDOW_UPDATE or SETTINGS."""
        for stream_id in list(self.pending):
            data, block = self.pending[stream_id]
            while data:
                size = min(len(data), self.peer_max_frame, self.send_window, self.stream_windows[stream_id])
                if size <= 0:
                    break
                self.outbound += frame(DATA, 0, stream_id, bytes(data[:size]))
                data = data[size:]
                self.send_window -= size
                self.stream_windows[stream_id] -= size
            if data:
                self.pending[stream_id] = (data, block)
                continue
            del self.pending[stream_id]
            del self.stream_windows[stream_id]
            self.outbound += frame(HEADERS, END_HEADERS | END_STREAM, stream_id, block)

    @property
    def idle(self) -> bool:
        """Whether every answer has been sent."""
        return not self.pending
