"""Python websockets as a client of a sockeye server.

    client.py URL --checks a,b,c --compression off|on|peer-off [--ca FILE]

Runs each check on its own connections against a server that speaks the
suite's path protocol (see ../README.md) and prints one RESULT line each.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import common


class Failure(Exception):
    pass


class Client:
    def __init__(self, url, compression, ca):
        self.url = url.rstrip("/")
        self.compression = compression
        self.ssl = ssl.create_default_context(cafile=ca) if ca else None

    def connect(self, path, subprotocols=None):
        return connect(
            f"{self.url}/{path}",
            subprotocols=subprotocols,
            # The peer offers permessage-deflate unless the mode says not.
            compression=None if self.compression == "peer-off" else "deflate",
            max_size=common.MAX_SIZE,
            ping_interval=None,
            proxy=None,
            ssl=self.ssl,
        )

    async def echo(self, ws, message):
        await ws.send(message)
        echoed = await ws.recv()
        if type(echoed) is not type(message):
            raise Failure(f"sent {type(message).__name__}, echo is {type(echoed).__name__}")
        if echoed != message:
            raise Failure(common.mismatch(message, echoed))

    async def server_close(self, tag):
        """The Close the server received on TAG's connection."""
        async with self.connect(f"report/{tag}") as ws:
            report = json.loads(await ws.recv())
        for event in report["events"]:
            if event["event"] == "closed":
                return event.get("code"), event.get("reason")
        raise Failure(f"the server recorded no close: {report}")

    async def run(self, check, tag):
        echo_path = f"echo/{tag}"
        if check == "extensions":
            async with self.connect(echo_path) as ws:
                header = ws.response.headers.get("Sec-WebSocket-Extensions")
                negotiated = header is not None and "permessage-deflate" in header
                if negotiated != (self.compression == "on"):
                    want = "negotiated" if self.compression == "on" else "refused"
                    raise Failure(f"Sec-WebSocket-Extensions is {header!r}, expected permessage-deflate {want}")
                await self.echo(ws, "hello")
        elif check == "subprotocol":
            async with self.connect(echo_path, ["x-unknown", "sockeye.v1"]) as ws:
                if ws.subprotocol != "sockeye.v1":
                    raise Failure(f"server chose {ws.subprotocol!r}, expected 'sockeye.v1'")
                await self.echo(ws, "hello")
        elif check == "subprotocol-none":
            async with self.connect(echo_path, ["x-unknown"]) as ws:
                if ws.subprotocol is not None:
                    raise Failure(f"server chose {ws.subprotocol!r}, expected none")
                await self.echo(ws, "hello")
        elif check == "utf8":
            async with self.connect(echo_path) as ws:
                for message in common.utf8_texts():
                    await self.echo(ws, message)
        elif check == "burst-1000":
            async with self.connect(echo_path) as ws:
                for index in range(1000):
                    await ws.send(f"burst {index}")
                for index in range(1000):
                    message = await ws.recv()
                    if message != f"burst {index}":
                        raise Failure(f"message {index} is {message[:40]!r}, expected 'burst {index}'")
        elif check == "ping":
            async with self.connect(echo_path) as ws:
                pong = await ws.ping(b"cli-ping")
                await pong
        elif check == "server-ping":
            async with self.connect(f"ping/{tag}") as ws:
                message = await ws.recv()
                if message != "pong:srv-ping":
                    raise Failure(f"server says {message!r}, expected 'pong:srv-ping'")
        elif check == "close-client":
            code, reason = common.CLIENT_CLOSE
            async with self.connect(echo_path) as ws:
                await ws.close(code, reason)
                if ws.protocol.close_rcvd is None:
                    raise Failure("no Close frame came back from the server")
            seen = await self.server_close(tag)
            if seen != (code, reason):
                raise Failure(f"server saw close {seen!r}, expected {(code, reason)!r}")
        elif check == "close-server":
            async with self.connect(f"close/{tag}") as ws:
                try:
                    message = await ws.recv()
                    raise Failure(f"expected a close, got message {message!r}")
                except ConnectionClosed as closed:
                    # websockets calls any code but 1000 and 1001 an error
                    # (ConnectionClosedError): clean means both frames went.
                    if closed.rcvd is None or closed.sent is None:
                        raise Failure(f"the closing handshake did not complete: {closed!r}")
                    received = (closed.rcvd.code, closed.rcvd.reason)
                    if received != common.SERVER_CLOSE:
                        raise Failure(f"received close {received!r}, expected {common.SERVER_CLOSE!r}")
            seen = await self.server_close(tag)
            if seen[0] is None:
                raise Failure("the server saw no code in the client's reply")
        else:
            kind, _, size = check.partition("-")
            if size not in common.SIZES or kind not in ("text", "binary"):
                raise Failure("unknown check")
            size = common.SIZES[size]
            message = common.text(size) if kind == "text" else common.binary(size)
            async with self.connect(echo_path) as ws:
                await self.echo(ws, message)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--checks", required=True)
    parser.add_argument("--compression", default="off", choices=["off", "on", "peer-off"])
    parser.add_argument("--ca")
    options = parser.parse_args()
    client = Client(options.url, options.compression, options.ca)
    for index, check in enumerate(filter(None, options.checks.split(","))):
        tag = f"py-{os.getpid()}-{index}-{check}"
        try:
            await asyncio.wait_for(client.run(check, tag), common.CHECK_TIMEOUT)
            common.result(check, None)
        except asyncio.TimeoutError:
            common.result(check, f"timed out after {common.CHECK_TIMEOUT:.0f} s")
        except Exception as error:  # every failure is reported, none stops the run
            common.result(check, f"{type(error).__name__}: {error}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
