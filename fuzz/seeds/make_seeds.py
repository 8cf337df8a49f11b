#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/.

The seeds are real handshakes and frames: the examples of RFC 6455 (sections
1.2, 1.3, 4.1 and 5.7), the permessage-deflate offers of RFC 7692 section 7
and of sockeye's own tests, and frames that each hit one rule of section 5.
Run it again after changing the input formats (see fuzz/src/lib.rs and the
head of each target); the output is deterministic.
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")
MASK = bytes([0x37, 0xFA, 0x21, 0x3D])  # RFC 6455 section 5.7


def write(target, name, data):
    directory = os.path.join(ROOT, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as out:
        out.write(data)


def frame(opcode, payload=b"", fin=True, rsv=0, masked=False, length=None):
    length = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    if length < 126:
        head = bytes([first, length | (0x80 if masked else 0)])
    elif length < 1 << 16:
        head = bytes([first, 126 | (0x80 if masked else 0)]) + struct.pack(">H", length)
    else:
        head = bytes([first, 127 | (0x80 if masked else 0)]) + struct.pack(">Q", length)
    if not masked:
        return head + payload
    body = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return head + MASK + body


def close(code, reason=b""):
    return struct.pack(">H", code) + reason


def frames(masked):
    f = lambda *a, **k: frame(*a, masked=masked, **k)
    return {
        "text_hello": f(1, b"Hello"),
        "fragmented_hello": f(1, b"Hel", fin=False) + f(0, b"lo"),
        "ping_in_fragments": f(1, b"Hel", fin=False) + f(9, b"Hello") + f(0, b"lo"),
        "pong": f(10, b"Hello"),
        "binary_256": f(2, bytes(range(256))),
        "binary_64bit_len_header_only": f(2, length=1 << 16),
        "len_msb_set": f(2, length=1 << 63),
        "len_2_32": f(2, length=1 << 32),
        "close_1000_bye": f(8, close(1000, b"bye")),
        "close_empty": f(8),
        "close_one_byte": f(8, b"\x03"),
        "close_1005": f(8, close(1005)),
        "close_bad_utf8": f(8, close(1000, b"\xff")),
        "close_124_reason": f(8, close(1000, b"a" * 124)),
        "text_bad_utf8": f(1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"),
        "text_split_code_point": f(1, b"\xce", fin=False) + f(0, b"\xba"),
        "reserved_bits": f(1, b"x", rsv=4),
        "reserved_opcode": f(3, b""),
        "fragmented_ping": f(9, b"", fin=False),
        "continuation_first": f(0, b"x"),
        "text_then_text": f(1, b"a", fin=False) + f(1, b"b"),
        "empty_fragments": f(1, b"", fin=False) + f(0, b"", fin=False) * 8 + f(0, b""),
        "pings": f(9, b"p" * 125) * 8,
        "messages_then_close": f(1, b"one") + f(2, b"two") + f(8, close(1001, b"going")),
        "unmasked_or_masked_other": frame(1, b"Hello", masked=not masked),
    }


def engine_seeds():
    for role, masked in (("engine_server", True), ("engine_client", False)):
        for name, data in frames(masked).items():
            # Byte 0: no script; the default config reads the frames at once.
            write(role, name, b"\x00" + data)
        hello = frame(1, b"Hello", masked=masked)
        # A script: small limits, keepalive on, feeds of 1 byte, a send.
        script = bytes([1, 0x10, 0, 0x20, 0, 0, 0, 0x08, 0, 0x40, 0, 0, 1, 5, 0, 0, 1, 0, 1, 0, 0])
        write(role, "scripted_small_limits", bytes([len(script)]) + script + hello * 4)
        write(role, "scripted_tail_chunk_1", bytes([8]) + bytes([0, 0, 0, 0, 0, 0, 1, 0]) + hello * 3)
        # permessage-deflate on (Settings.deflate: Some, no takeover flags,
        # both windows absent, threshold 0), then the compressed "Hello" of
        # RFC 7692 section 7.2.3.1, once whole and once in two fragments
        # (section 7.2.3.2), then a compressed frame with a bad stream.
        script = bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 8, 8, 0])
        hello_deflated = bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
        data = (frame(1, hello_deflated, rsv=4, masked=masked)
                + frame(1, hello_deflated[:3], fin=False, rsv=4, masked=masked)
                + frame(0, hello_deflated[3:], masked=masked)
                + frame(1, b"Hello", masked=masked)
                + frame(2, b"\xff\xff\xff", rsv=4, masked=masked))
        write(role, "deflate_rfc7692_hello", bytes([len(script)]) + script + data)
        no_takeover = bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 3, 16])
        write(role, "deflate_no_takeover", bytes([len(no_takeover)]) + no_takeover + data)


REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


def request_with(extra=b"", host=b"server.example.com", origin=b"http://example.com", target=b"/chat"):
    return (
        b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nUpgrade: websocket\r\n"
        b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nOrigin: " + origin + b"\r\n" + extra + b"\r\n"
    )


def request_seeds():
    write("handshake_request", "rfc6455_1_2", b"\x00\x00" + REQUEST)
    write("handshake_request", "rfc6455_1_2_chunked", b"\x07\x00" + REQUEST)
    write("handshake_request", "rfc6455_1_2_with_frame", b"\x00\x00" + REQUEST + frame(1, b"Hello", masked=True))
    write("handshake_request", "small_limits", b"\x03\x05" + REQUEST)
    write("handshake_request", "deflate_offers", b"\x00\x00" + request_with(
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, permessage-deflate\r\n"))
    write("handshake_request", "deflate_server_bits", b"\x00\x00" + request_with(
        b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; client_max_window_bits=\"12\"\r\n"))
    write("handshake_request", "same_host_origin", b"\x00\x00" + request_with(
        host=b"example.com:8080", origin=b"http://example.com:8080"))
    write("handshake_request", "null_origin", b"\x00\x00" + request_with(origin=b"null"))
    write("handshake_request", "ipv6_host", b"\x00\x00" + request_with(host=b"[::1]:8080", origin=b"http://[::1]:8080"))
    write("handshake_request", "absolute_target", b"\x00\x00" + request_with(target=b"ws://server.example.com/chat?x=1"))
    write("handshake_request", "content_length_zero", b"\x00\x00" + request_with(b"Content-Length: 0\r\n"))
    write("handshake_request", "http10", b"\x00\x00" + REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0"))
    write("handshake_request", "post", b"\x00\x00" + REQUEST.replace(b"GET", b"POST"))
    write("handshake_request", "bare_lf", b"\x00\x00" + REQUEST.replace(b"\r\n", b"\n"))
    write("handshake_request", "folded", b"\x00\x00" + request_with(b"X-A: 1\r\n  2\r\n"))
    write("handshake_request", "many_headers", b"\x00\x00" + request_with(b"X-A: 1\r\n" * 70))


RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
)


def response_seeds():
    write("handshake_response", "rfc6455_1_3", b"\x00\x00" + RESPONSE + b"\r\n")
    write("handshake_response", "rfc6455_1_3_chunked", b"\x05\x00" + RESPONSE + b"\r\n" + frame(1, b"Hello"))
    write("handshake_response", "subprotocol", b"\x00\x01" + RESPONSE + b"Sec-WebSocket-Protocol: chat\r\n\r\n")
    write("handshake_response", "deflate_answer", b"\x00\x00" + RESPONSE +
          b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; client_max_window_bits=12\r\n\r\n")
    write("handshake_response", "deflate_no_context", b"\x00\x2c" + RESPONSE +
          b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n")
    write("handshake_response", "two_extensions", b"\x00\x02" + RESPONSE +
          b"Sec-WebSocket-Extensions: x-foo; a=1\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
    write("handshake_response", "refusal", b"\x00\x00HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden")
    write("handshake_response", "uri_plain", b"\x00\x80ws://example.com/chat")
    write("handshake_response", "uri_tls_port_query", b"\x00\x83wss://Example.COM:8443/a/b?c=d&e")
    write("handshake_response", "uri_ipv6_userinfo", b"\x00\xffws://user:p%40ss@[::1]:9001/")
    write("handshake_response", "uri_unicode_path", "\x00\x81ws://example.com/caf\u00e9?q=\u00fc".encode())


def header_seeds():
    values = [
        b"permessage-deflate",
        b"permessage-deflate; client_max_window_bits",
        b"permessage-deflate; client_max_window_bits, permessage-deflate",
        b"permessage-deflate; server_max_window_bits=10; client_max_window_bits=11",
        b"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        b"permessage-deflate; server_max_window_bits=\"10\"",
        b"permessage-deflate; client_max_window_bits=8",
        b"permessage-deflate; server_max_window_bits=8, permessage-deflate",
        b"permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        b"permessage-deflate; Server_Max_Window_Bits=9",
        b"permessage-deflate; mystery",
        b"permessage-deflate; client_max_window_bits=0",
        b"permessage-deflate; client_max_window_bits=16",
        b"permessage-deflate; client_max_window_bits=15.0",
        b"mux; max-channels=4; flow-control, deflate-stream",
        b"x; a=\"\\1\\2\"",
        b"chat, superchat",
        b"chat, , superchat",
        b"websocket",
        b"a" + b" " * 64 + b"b",
    ]
    for index, value in enumerate(values):
        write("headers", "value_%02d" % index, bytes([index * 13 % 256]) + value)


if __name__ == "__main__":
    engine_seeds()
    request_seeds()
    response_seeds()
    header_seeds()
