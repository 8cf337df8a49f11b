"""An independent WebSocket-over-HTTP/2 client (RFC 8441) of a sockeye server.

    h2_client.py URL --checks a,b,c --compression off|on|peer-off

HTTP/2 from Python's `h2` package (hyper-h2), in cleartext with prior
knowledge (h2c); the WebSocket framing (RFC 6455) and permessage-deflate
(RFC 7692, with the standard library's zlib) written here, so nothing of
sockeye's is on this side. Each check opens one HTTP/2 connection and its
WebSockets as extended CONNECT streams of it, and prints one RESULT line.
The server must speak the suite's path protocol (../README.md) and serve
HTTP/2 (`interop-peer server --http2`).
"""

import argparse
import json
import os
import socket
import struct
import sys
import time
import zlib
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h2.settings

import common

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
TAIL = b"\x00\x00\xff\xff"


class Failure(Exception):
    pass


class Stream:
    """What arrived on one HTTP/2 stream."""

    def __init__(self):
        self.response = None
        self.data = bytearray()
        self.ended = False
        self.reset = None


class Connection:
    """One HTTP/2 connection, driven by hand: `pump` reads and handles
    frames until a condition holds or the check's deadline passes."""

    def __init__(self, host, port, deadline):
        self.deadline = deadline
        self.authority = f"{host}:{port}"
        self.sock = socket.create_connection((host, port), timeout=5)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=config)
        self.h2.initiate_connection()
        self.flush()
        self.streams = {}
        self.server_settings = None
        self.terminated = None
        self.pump(lambda: self.server_settings is not None, "the server's SETTINGS")

    def close(self):
        try:
            self.h2.close_connection()
            self.flush()
        except Exception:
            pass
        self.sock.close()

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, done, what):
        while not done():
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"timed out waiting for {what}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise Failure(f"timed out waiting for {what}")
            if not data:
                if done():
                    return
                raise Failure(f"the server closed the connection while waiting for {what}")
            for event in self.h2.receive_data(data):
                self.handle(event)
            self.flush()

    def handle(self, event):
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self.server_settings = {
                code: setting.new_value for code, setting in event.changed_settings.items()
            }
        elif isinstance(event, h2.events.ResponseReceived):
            self.streams[event.stream_id].response = dict(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            self.streams[event.stream_id].data += event.data
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.streams[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            self.streams[event.stream_id].reset = event.error_code
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = event.error_code

    def connect(self, path, protocols=None, extensions=None):
        """Sends an extended CONNECT; returns (stream id, response headers)."""
        headers = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", path),
            (":authority", self.authority),
            ("sec-websocket-version", "13"),
        ]
        if protocols:
            headers.append(("sec-websocket-protocol", ", ".join(protocols)))
        if extensions:
            headers.append(("sec-websocket-extensions", extensions))
        stream_id = self.h2.get_next_available_stream_id()
        self.streams[stream_id] = Stream()
        self.h2.send_headers(stream_id, headers)
        self.flush()
        stream = self.streams[stream_id]
        self.pump(
            lambda: stream.response is not None or stream.reset is not None,
            f"the response to CONNECT {path}",
        )
        if stream.reset is not None:
            raise Failure(f"CONNECT {path} was reset ({stream.reset!r})")
        return stream_id, stream.response

    def send(self, stream_id, data, end_stream=False):
        """Sends DATA within the flow-control windows."""
        view = memoryview(data)
        while True:
            window = min(
                self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
            )
            if window <= 0:
                self.pump(
                    lambda: self.h2.local_flow_control_window(stream_id) > 0
                    or self.streams[stream_id].reset is not None,
                    "flow-control window",
                )
                if self.streams[stream_id].reset is not None:
                    raise Failure(f"stream {stream_id} was reset while sending")
                continue
            chunk, view = view[:window], view[window:]
            last = len(view) == 0
            self.h2.send_data(stream_id, bytes(chunk), end_stream=end_stream and last)
            self.flush()
            if last:
                return


class WebSocket:
    """RFC 6455 framing over one stream, by hand: client frames masked,
    server frames checked unmasked."""

    def __init__(self, connection, stream_id, response, offered_deflate):
        self.connection = connection
        self.id = stream_id
        self.stream = connection.streams[stream_id]
        self.response = response
        self.deflate = None
        header = response.get("sec-websocket-extensions")
        if header:
            if not offered_deflate:
                raise Failure(f"the server answered an extension not offered: {header}")
            self.deflate = Deflate(header)
        self.compressed_in = 0

    def send_frame(self, opcode, payload, fin=True, rsv1=False):
        first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        length = len(payload)
        if length < 126:
            head = struct.pack("!BB", first, 0x80 | length)
        elif length < 65536:
            head = struct.pack("!BBH", first, 0x80 | 126, length)
        else:
            head = struct.pack("!BBQ", first, 0x80 | 127, length)
        mask = os.urandom(4)
        masked = (
            int.from_bytes(payload, "big")
            ^ int.from_bytes((mask * (length // 4 + 1))[:length], "big")
        ).to_bytes(length, "big")
        self.connection.send(self.id, head + mask + masked)

    def send(self, message):
        opcode = TEXT if isinstance(message, str) else BINARY
        payload = message.encode() if isinstance(message, str) else bytes(message)
        if self.deflate:
            self.send_frame(opcode, self.deflate.compress(payload), rsv1=True)
        else:
            self.send_frame(opcode, payload)

    def recv_frame(self):
        """(fin, rsv1, opcode, payload) of the next server frame."""
        frame = None

        def parsed():
            nonlocal frame
            frame = parse_frame(self.stream.data)
            return frame is not None or self.stream.ended or self.stream.reset is not None

        self.connection.pump(parsed, f"a frame on stream {self.id}")
        if frame is None:
            how = "reset" if self.stream.reset is not None else "ended"
            raise Failure(f"stream {self.id} {how} before a whole frame")
        return frame

    def recv(self):
        """The next message (str or bytes), answering Pings; a Close is
        returned as ("close", code, reason)."""
        parts, kind, compressed = [], None, False
        while True:
            fin, rsv1, opcode, payload = self.recv_frame()
            if opcode == PING:
                self.send_frame(PONG, payload)
                continue
            if opcode == PONG:
                return ("pong", payload)
            if opcode == CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return ("close", code, payload[2:].decode())
            if opcode in (TEXT, BINARY):
                if kind is not None:
                    raise Failure("a new message began inside a fragmented one")
                kind, compressed = opcode, rsv1
            elif opcode != CONTINUATION or kind is None:
                raise Failure(f"unexpected opcode {opcode}")
            if rsv1 and not self.deflate:
                raise Failure("RSV1 set without permessage-deflate")
            parts.append(payload)
            if fin:
                break
        data = b"".join(parts)
        if compressed:
            self.compressed_in += 1
            data = self.deflate.decompress(data)
        return data.decode() if kind == TEXT else data

    def close(self, code, reason):
        """Closes from this side: Close, the server's Close, then the
        server's END_STREAM, then ours. Returns the server's (code, reason)."""
        self.send_frame(CLOSE, struct.pack("!H", code) + reason.encode())
        while True:
            reply = self.recv()
            if isinstance(reply, tuple) and reply[0] == "close":
                break
        self.expect_end()
        self.end()
        return reply[1], reply[2]

    def end(self):
        """Our END_STREAM, unless the server already reset the stream."""
        if self.stream.reset is None:
            self.connection.send(self.id, b"", end_stream=True)

    def expect_end(self):
        """The server ends its side of the stream cleanly with END_STREAM
        after its Close (RFC 8441 section 5), and sends nothing more. It may
        then reset the stream with NO_ERROR, which RFC 9113 section 8.1
        lets a server do once its response is complete (h2 does when the
        server drops the stream before the client's END_STREAM); any other
        reset, or one without END_STREAM, fails."""
        stream = self.stream
        self.connection.pump(
            lambda: stream.ended or stream.reset is not None, f"END_STREAM on stream {self.id}"
        )
        if not stream.ended:
            raise Failure(f"stream {self.id} was reset ({stream.reset!r}) without END_STREAM")
        if stream.reset not in (None, 0):
            raise Failure(f"stream {self.id} was reset ({stream.reset!r}) after END_STREAM")
        if stream.data:
            raise Failure(f"{len(stream.data)} bytes after the server's Close")


def parse_frame(buffer):
    """Takes one whole frame off `buffer`, or returns None."""
    if len(buffer) < 2:
        return None
    first, second = buffer[0], buffer[1]
    if second & 0x80:
        raise Failure("the server sent a masked frame")
    if first & 0x30:
        raise Failure("the server set RSV2 or RSV3")
    length, start = second & 0x7F, 2
    if length == 126:
        if len(buffer) < 4:
            return None
        length, start = struct.unpack("!H", buffer[2:4])[0], 4
    elif length == 127:
        if len(buffer) < 10:
            return None
        length, start = struct.unpack("!Q", buffer[2:10])[0], 10
    if len(buffer) < start + length:
        return None
    payload = bytes(buffer[start : start + length])
    del buffer[: start + length]
    return bool(first & 0x80), bool(first & 0x40), first & 0x0F, payload


class Deflate:
    """permessage-deflate (RFC 7692) as the server's response set it up."""

    def __init__(self, header):
        name, *params = [part.strip() for part in header.split(";")]
        if name != "permessage-deflate":
            raise Failure(f"unknown extension in the response: {header}")
        values = {}
        for param in params:
            key, _, value = param.partition("=")
            values[key.strip()] = value.strip().strip('"')
        self.client_bits = int(values.get("client_max_window_bits") or 15)
        self.client_reset = "client_no_context_takeover" in values
        self.server_reset = "server_no_context_takeover" in values
        self.compressor = self.new_compressor()
        self.decompressor = zlib.decompressobj(-15)

    def new_compressor(self):
        # zlib cannot make 8-bit windows; a 9-bit one is within an 8-bit
        # limit's decoder's reach only if the server allows 9, so ask 9+.
        return zlib.compressobj(6, zlib.DEFLATED, -max(self.client_bits, 9))

    def compress(self, data):
        if self.client_reset:
            self.compressor = self.new_compressor()
        out = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4] if out.endswith(TAIL) else out

    def decompress(self, data):
        if self.server_reset:
            self.decompressor = zlib.decompressobj(-15)
        return self.decompressor.decompress(data + TAIL)


class Client:
    def __init__(self, url, compression):
        parts = urlsplit(url)
        if parts.scheme != "ws":
            raise SystemExit("h2_client.py speaks h2c only: give a ws:// URL")
        self.host, self.port = parts.hostname, parts.port
        self.compression = compression

    def connection(self, deadline):
        return Connection(self.host, self.port, deadline)

    def open(self, connection, path, protocols=None):
        offered = self.compression != "peer-off"
        extensions = "permessage-deflate; client_max_window_bits" if offered else None
        stream_id, response = connection.connect(path, protocols, extensions)
        status = response.get(":status")
        if status != "200":
            raise Failure(f"CONNECT {path} answered {status}")
        ws = WebSocket(connection, stream_id, response, offered)
        if (ws.deflate is not None) != (self.compression == "on"):
            raise Failure(
                f"permessage-deflate {'negotiated' if ws.deflate else 'not negotiated'} "
                f"in mode {self.compression}: {response.get('sec-websocket-extensions')}"
            )
        return ws

    def echo(self, ws, message):
        ws.send(message)
        echoed = ws.recv()
        if type(echoed) is not type(message):
            raise Failure(f"sent {type(message).__name__}, echo is {echoed!r:.80}")
        if echoed != message:
            raise Failure(common.mismatch(message, echoed))

    def report(self, connection, tag):
        """What the server recorded for TAG, asked on `connection` (one
        more stream of it)."""
        ws = self.open(connection, f"/report/{tag}")
        report = json.loads(ws.recv())
        ws.close(1000, "")
        return report["events"]

    def run(self, check):
        deadline = time.monotonic() + common.CHECK_TIMEOUT
        connection = self.connection(deadline)
        try:
            getattr(self, "check_" + check.replace("-", "_").split("_")[0])(connection, check)
        finally:
            connection.close()

    # --- the checks -----------------------------------------------------------

    def check_settings(self, connection, check):
        settings = connection.server_settings
        if settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL) != 1:
            raise Failure(f"SETTINGS_ENABLE_CONNECT_PROTOCOL is not 1: {settings}")
        if not settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS):
            raise Failure(f"no SETTINGS_MAX_CONCURRENT_STREAMS: {settings}")

    def check_extensions(self, connection, check):
        # `open` checks permessage-deflate against the mode.
        ws = self.open(connection, f"/echo/{check}")
        self.echo(ws, "x" * 1000)
        if ws.deflate and ws.compressed_in == 0:
            raise Failure("negotiated, yet the echo of 1000 bytes came uncompressed")
        ws.close(1000, "")

    def check_subprotocol(self, connection, check):
        ws = self.open(connection, f"/echo/{check}", ["x-unknown", "sockeye.v1"])
        chosen = ws.response.get("sec-websocket-protocol")
        if chosen != "sockeye.v1":
            raise Failure(f"chosen subprotocol {chosen!r}, expected 'sockeye.v1'")
        self.echo(ws, "hello")
        ws.close(1000, "")

    def check_text(self, connection, check):
        ws = self.open(connection, f"/echo/{check}")
        self.echo(ws, common.text(common.SIZES[check.split("-", 1)[1]]))
        ws.close(1000, "")

    def check_binary(self, connection, check):
        ws = self.open(connection, f"/echo/{check}")
        self.echo(ws, common.binary(common.SIZES[check.split("-", 1)[1]]))
        ws.close(1000, "")

    def check_utf8(self, connection, check):
        ws = self.open(connection, f"/echo/{check}")
        for text in common.utf8_texts():
            self.echo(ws, text)
        ws.close(1000, "")

    def check_fragmented(self, connection, check):
        ws = self.open(connection, f"/echo/{check}")
        if ws.deflate:
            # One compressed message split across frames: RSV1 on the first.
            data = ws.deflate.compress("fragmented ✓ message".encode())
            pieces = [data[:3], data[3:7], data[7:]]
            ws.send_frame(TEXT, pieces[0], fin=False, rsv1=True)
        else:
            data = "fragmented ✓ message".encode()
            pieces = [data[:3], data[3:12], data[12:]]
            ws.send_frame(TEXT, pieces[0], fin=False)
        ws.send_frame(PING, b"between fragments")
        ws.send_frame(CONTINUATION, pieces[1], fin=False)
        ws.send_frame(CONTINUATION, pieces[2], fin=True)
        pong = ws.recv()
        if pong != ("pong", b"between fragments"):
            raise Failure(f"expected the Pong first, got {pong!r:.80}")
        echoed = ws.recv()
        if echoed != "fragmented ✓ message":
            raise Failure(f"echo {echoed!r:.80}")
        ws.close(1000, "")

    def check_streams(self, connection, check):
        """Several WebSockets as streams of this one connection, their
        messages interleaved, each closed on its own."""
        count = int(check.split("-", 1)[1])
        sockets = [self.open(connection, f"/echo/{check}-{i}") for i in range(count)]
        for round in range(20):
            sent = []
            for i, ws in enumerate(sockets):
                message = (
                    f"stream {i} round {round}"
                    if (i + round) % 2
                    else common.binary(1000 * (i + 1) + round)
                )
                ws.send(message)
                sent.append(message)
            for ws, message in reversed(list(zip(sockets, sent))):
                echoed = ws.recv()
                if echoed != message:
                    raise Failure(common.mismatch(message, echoed))
        # Close every other one; the rest still echo; then close them.
        for ws in sockets[::2]:
            code, _ = ws.close(1000, "early")
            if code != 1000:
                raise Failure(f"the server's Close has code {code}")
        for ws in sockets[1::2]:
            self.echo(ws, "after the neighbours closed")
            ws.close(1000, "")
        if connection.terminated is not None:
            raise Failure(f"the connection was terminated ({connection.terminated!r})")
        events = self.report(connection, f"{check}-0")
        opened = [event for event in events if event["event"] == "open"]
        if not opened or opened[0].get("http2") is not True:
            raise Failure(f"the server did not see an HTTP/2 stream: {events}")

    def check_ping(self, connection, check):
        ws = self.open(connection, f"/echo/{check}")
        ws.send_frame(PING, b"client-ping")
        reply = ws.recv()
        if reply != ("pong", b"client-ping"):
            raise Failure(f"expected Pong 'client-ping', got {reply!r:.80}")
        ws.close(1000, "")

    def check_server(self, connection, check):
        if check == "server-ping":
            ws = self.open(connection, f"/ping/{check}")
            reply = ws.recv()  # recv answers the Ping
            if reply != "pong:srv-ping":
                raise Failure(f"the server did not see our Pong: {reply!r:.80}")
            ws.close(1000, "")
        else:
            raise Failure(f"unknown check {check}")

    def check_close(self, connection, check):
        if check == "close-client":
            code, reason = common.CLIENT_CLOSE
            ws = self.open(connection, f"/echo/{check}")
            echoed = ws.close(code, reason)
            if echoed[0] != code:
                raise Failure(f"the server's Close answered {echoed}")
            expected = code, reason
        elif check == "close-server":
            ws = self.open(connection, f"/close/{check}")
            reply = ws.recv()
            if reply != ("close", *common.SERVER_CLOSE):
                raise Failure(f"expected the server's Close {common.SERVER_CLOSE}, got {reply!r:.80}")
            code = common.SERVER_CLOSE[0]
            ws.send_frame(CLOSE, struct.pack("!H", code))
            ws.expect_end()
            ws.end()
            expected = code, ""
        else:
            raise Failure(f"unknown check {check}")
        events = self.report(connection, check)
        closed = [event for event in events if event["event"] == "closed"]
        if not closed:
            raise Failure(f"the server recorded no close: {events}")
        seen = closed[0]
        if (seen.get("code"), seen.get("reason") or "") != expected or not seen.get("clean"):
            raise Failure(f"the server recorded {seen}, expected a clean close with {expected}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--checks", required=True)
    parser.add_argument("--compression", default="off", choices=["off", "on", "peer-off"])
    arguments = parser.parse_args()
    client = Client(arguments.url, arguments.compression)
    for check in arguments.checks.split(","):
        try:
            client.run(check)
            common.result(check, None)
        except Exception as error:  # a check's failure, whatever it is
            common.result(check, f"{type(error).__name__}: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
