"""An HTTP/2 WebSocket server (RFC 8441) on Python's `h2` and `wsproto`,
for sockeye's client.

    h2_server.py --compression off|on|peer-off [--tls-dir DIR]

Cleartext HTTP/2 by prior knowledge (h2c), or TLS with ALPN `h2` when
given a directory with `server.pem` and `server-key.pem`. It advertises
SETTINGS_ENABLE_CONNECT_PROTOCOL, accepts extended CONNECT requests with
`:protocol websocket` (RFC 8441 sections 4 and 5: `:scheme`, `:path` and
`:authority` present, `sec-websocket-version: 13`, no
`sec-websocket-key`; anything else is refused with 400), and speaks the
suite's path protocol (see ../README.md) on each stream: /echo/TAG,
/ping/TAG, /close/TAG, /report/TAG.

The HTTP/2 framing is `h2`'s; the WebSocket frames inside the DATA frames
are `wsproto`'s frame layer (`FrameProtocol` as a server: it unmasks the
client's frames and fails a frame that is not masked), with its
permessage-deflate unless the mode is `peer-off`. A WebSocket's close ends
its stream with END_STREAM once both Close frames are through.

Each recorded `open` event carries the HTTP/2 connection's number and the
stream id, and the end of the client's side is recorded as `end_stream`
(or `reset`), so a client can check that its WebSockets shared one
connection and that each close ended its stream cleanly. Prints
`python-h2-server: listening on ws://...` on stderr and what it saw as
JSON lines on stdout. Stops by itself after ten minutes.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed
from wsproto.handshake import server_extensions_handshake

import common

LIFETIME = 600.0
# Each stream's receive window: the server reads everything at once.
WINDOW = 1 << 20
records = {}
connections = 0


def record(tag, **event):
    event["tag"] = tag
    print(json.dumps(event), flush=True)
    if len(records) < 10_000 or tag in records:
        records.setdefault(tag, []).append(event)


def seen(tag, *kinds):
    return any(event["event"] in kinds for event in records.get(tag, []))


class WebSocket:
    """One WebSocket: an HTTP/2 stream and wsproto's frame layer."""

    def __init__(self, connection, stream_id, kind, tag, extensions):
        self.connection = connection
        self.stream_id = stream_id
        self.kind = kind
        self.tag = tag
        self.frames = FrameProtocol(client=False, extensions=extensions)
        self.outbox = bytearray()
        self.end_after_outbox = False
        self.ended = False
        self.parts = []
        self.close_sent = None
        self.close_rcvd = None

    def send(self, data):
        self.outbox += data

    def close(self, code, reason):
        if self.close_sent is None:
            self.close_sent = code
            self.send(self.frames.close(code, reason))

    def receive(self, data):
        """Feeds stream data to the frame layer and answers what it gives."""
        if self.close_rcvd is not None:
            return
        self.frames.receive_bytes(data)
        try:
            for frame in self.frames.received_frames():
                self.frame(frame)
        except ParseFailed as error:
            record(self.tag, event="error", error=str(error), code=int(error.code))
            self.close(int(error.code), str(error)[:100])
            self.end_after_outbox = True

    def frame(self, frame):
        if frame.opcode is Opcode.PING:
            self.send(self.frames.pong(frame.payload))
        elif frame.opcode is Opcode.PONG:
            if self.kind == "ping" and bytes(frame.payload) == b"srv-ping":
                record(self.tag, event="pong", data="srv-ping")
                self.send(self.frames.send_data("pong:srv-ping"))
        elif frame.opcode is Opcode.CLOSE:
            code, reason = frame.payload
            self.close_rcvd = (int(code), reason)
            self.close(int(code), reason)
            record(
                self.tag,
                event="closed",
                code=int(code),
                reason=reason,
                sent_code=self.close_sent,
                clean=True,
            )
            # Both Close frames are through: END_STREAM (RFC 8441 section 5).
            self.end_after_outbox = True
        else:
            self.parts.append(frame.payload)
            if frame.message_finished:
                text = frame.opcode is Opcode.TEXT
                message = ("" if text else b"").join(self.parts)
                self.parts = []
                if self.kind in ("echo", "ping") and self.close_sent is None:
                    self.send(self.frames.send_data(message))


class Connection:
    """One HTTP/2 connection and its WebSockets."""

    def __init__(self, reader, writer, compression):
        global connections
        connections += 1
        self.number = connections
        self.reader = reader
        self.writer = writer
        self.compression = compression
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=config)
        self.sockets = {}

    async def run(self):
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
            },
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(WINDOW * 16)
        await self.flush()
        try:
            while True:
                data = await self.reader.read(1 << 16)
                if not data:
                    break
                try:
                    events = self.h2.receive_data(data)
                except h2.exceptions.ProtocolError as error:
                    print(f"python-h2-server: protocol error: {error}", file=sys.stderr, flush=True)
                    await self.flush()
                    break
                for event in events:
                    self.event(event)
                await self.flush()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writer.close()

    def event(self, event):
        if isinstance(event, h2.events.RequestReceived):
            self.request(event.stream_id, event.headers)
        elif isinstance(event, h2.events.DataReceived):
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            socket = self.sockets.get(event.stream_id)
            if socket is not None:
                socket.receive(event.data)
        elif isinstance(event, h2.events.StreamEnded):
            socket = self.sockets.get(event.stream_id)
            if socket is not None:
                record(socket.tag, event="end_stream", stream=event.stream_id)
                socket.end_after_outbox = True
        elif isinstance(event, h2.events.StreamReset):
            socket = self.sockets.pop(event.stream_id, None)
            if socket is not None:
                record(socket.tag, event="reset", stream=event.stream_id, code=int(event.error_code))

    def refuse(self, stream_id, status, why):
        print(f"python-h2-server: refused stream {stream_id}: {why}", file=sys.stderr, flush=True)
        self.h2.send_headers(stream_id, [(":status", str(status))], end_stream=True)

    def request(self, stream_id, headers):
        fields = {}
        for name, value in headers:
            if name in fields:
                fields[name] += ", " + value
            else:
                fields[name] = value
        if fields.get(":method") != "CONNECT" or fields.get(":protocol") != "websocket":
            return self.refuse(stream_id, 400, "not an extended CONNECT for websocket")
        if not all(fields.get(name) for name in (":scheme", ":path", ":authority")):
            return self.refuse(stream_id, 400, "missing :scheme, :path or :authority")
        if fields.get("sec-websocket-version") != "13":
            return self.refuse(stream_id, 400, "sec-websocket-version is not 13")
        if "sec-websocket-key" in fields:
            return self.refuse(stream_id, 400, "sec-websocket-key over HTTP/2")
        path = fields[":path"]
        kind, _, tag = path.lstrip("/").partition("/")
        offered_protocols = [p.strip() for p in fields.get("sec-websocket-protocol", "").split(",")]
        offered_extensions = fields.get("sec-websocket-extensions", "")
        response = [(":status", "200")]
        subprotocol = next((p for p in common.SUBPROTOCOLS if p in offered_protocols), None)
        if subprotocol:
            response.append(("sec-websocket-protocol", subprotocol))
        extensions = []
        if self.compression != "peer-off" and offered_extensions:
            deflate = PerMessageDeflate()
            offers = [offer.strip() for offer in offered_extensions.split(",")]
            accepted = server_extensions_handshake(offers, [deflate])
            if accepted:
                response.append(("sec-websocket-extensions", accepted.decode("ascii")))
                extensions.append(deflate)
        if kind != "report":
            record(
                tag,
                event="open",
                path=path,
                connection=self.number,
                stream=stream_id,
                offered_extensions=offered_extensions,
                offered_protocols=fields.get("sec-websocket-protocol", ""),
            )
        self.h2.send_headers(stream_id, response)
        socket = WebSocket(self, stream_id, kind, tag, extensions)
        self.sockets[stream_id] = socket
        if kind == "ping":
            socket.send(socket.frames.ping(b"srv-ping"))
        elif kind == "close":
            socket.close(*common.SERVER_CLOSE)
        elif kind == "report":
            asyncio.get_running_loop().create_task(self.report(socket))
        elif kind != "echo":
            socket.close(1008, "unknown path")

    async def report(self, socket):
        """What TAG saw, once its connection ended (closed, and its stream
        ended or reset), waiting at most 3 s."""
        for _ in range(150):
            if seen(socket.tag, "closed") and seen(socket.tag, "end_stream", "reset"):
                break
            await asyncio.sleep(0.02)
        report = {"tag": socket.tag, "events": records.get(socket.tag, [])}
        socket.send(socket.frames.send_data(json.dumps(report)))
        socket.close(1000, "")
        await self.flush()

    def pump(self):
        """Moves each WebSocket's output into DATA frames as far as flow
        control allows; ends a stream whose WebSocket is done."""
        for stream_id, socket in list(self.sockets.items()):
            while socket.outbox:
                window = min(
                    self.h2.local_flow_control_window(stream_id),
                    self.h2.max_outbound_frame_size,
                )
                if window <= 0:
                    break
                chunk = bytes(socket.outbox[:window])
                del socket.outbox[:window]
                self.h2.send_data(stream_id, chunk)
            if not socket.outbox and socket.end_after_outbox and not socket.ended:
                socket.ended = True
                try:
                    self.h2.end_stream(stream_id)
                except h2.exceptions.StreamClosedError:
                    pass
            if socket.ended and seen(socket.tag, "end_stream", "reset"):
                del self.sockets[stream_id]

    async def flush(self):
        try:
            self.pump()
        except h2.exceptions.ProtocolError as error:
            print(f"python-h2-server: cannot send: {error}", file=sys.stderr, flush=True)
        data = self.h2.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--compression", default="off", choices=["off", "on", "peer-off"])
    parser.add_argument("--tls-dir")
    options = parser.parse_args()
    context = None
    if options.tls_dir:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(
            os.path.join(options.tls_dir, "server.pem"),
            os.path.join(options.tls_dir, "server-key.pem"),
        )
        context.set_alpn_protocols(["h2"])

    async def serve(reader, writer):
        await Connection(reader, writer, options.compression).run()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    scheme = "wss" if context else "ws"
    print(f"python-h2-server: listening on {scheme}://127.0.0.1:{port}", file=sys.stderr, flush=True)
    async with server:
        await asyncio.sleep(LIFETIME)


if __name__ == "__main__":
    asyncio.run(main())
