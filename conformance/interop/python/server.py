"""Python websockets as a server for sockeye's client.

    server.py --compression off|on|peer-off [--tls-dir DIR]

Speaks the suite's path protocol (see ../README.md): /echo/TAG, /ping/TAG,
/close/TAG, /report/TAG. Prints `python-server: listening on ws://...` on
stderr and what it saw as JSON lines on stdout. Stops by itself after ten
minutes.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

import common

LIFETIME = 600.0
records = {}


def record(tag, **event):
    event["tag"] = tag
    print(json.dumps(event), flush=True)
    if len(records) < 10_000 or tag in records:
        records.setdefault(tag, []).append(event)


def record_closed(tag, ws):
    rcvd = ws.protocol.close_rcvd
    record(
        tag,
        event="closed",
        code=rcvd.code if rcvd else None,
        reason=rcvd.reason if rcvd else None,
        sent_code=ws.protocol.close_sent.code if ws.protocol.close_sent else None,
        clean=rcvd is not None and ws.protocol.close_sent is not None,
    )


def select_subprotocol(connection, offered):
    """The first of ours the client offered, or none (websockets' default
    refuses a handshake without a match)."""
    for subprotocol in common.SUBPROTOCOLS:
        if subprotocol in offered:
            return subprotocol
    return None


async def echo(ws, tag):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass
    record_closed(tag, ws)


async def handler(ws):
    path = ws.request.path
    kind, _, tag = path.lstrip("/").partition("/")
    if kind != "report":
        record(
            tag,
            event="open",
            path=path,
            offered_extensions=ws.request.headers.get("Sec-WebSocket-Extensions", ""),
            offered_protocols=ws.request.headers.get("Sec-WebSocket-Protocol", ""),
        )
    if kind == "echo":
        await echo(ws, tag)
    elif kind == "ping":
        try:
            pong = await ws.ping(b"srv-ping")
            await asyncio.wait_for(pong, 10)
            record(tag, event="pong", data="srv-ping")
            await ws.send("pong:srv-ping")
        except (ConnectionClosed, asyncio.TimeoutError) as error:
            record(tag, event="error", error=repr(error))
        await echo(ws, tag)
    elif kind == "close":
        await ws.close(*common.SERVER_CLOSE)
        record_closed(tag, ws)
    elif kind == "report":
        for _ in range(150):
            if any(event["event"] == "closed" for event in records.get(tag, [])):
                break
            await asyncio.sleep(0.02)
        await ws.send(json.dumps({"tag": tag, "events": records.get(tag, [])}))
        await ws.close()
    else:
        await ws.close(1008, "unknown path")


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
    async with serve(
        handler,
        "127.0.0.1",
        0,
        # The peer accepts permessage-deflate unless the mode says not.
        compression=None if options.compression == "peer-off" else "deflate",
        select_subprotocol=select_subprotocol,
        max_size=common.MAX_SIZE,
        ping_interval=None,
        ssl=context,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        scheme = "wss" if context else "ws"
        print(f"python-server: listening on {scheme}://127.0.0.1:{port}", file=sys.stderr, flush=True)
        await asyncio.sleep(LIFETIME)


if __name__ == "__main__":
    asyncio.run(main())
