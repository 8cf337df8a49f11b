"""What the Python peers share: payloads, the path protocol's constants."""

import random

# 16 MiB messages and some room: websockets' default max_size is 1 MiB.
MAX_SIZE = 64 * 1024 * 1024
CHECK_TIMEOUT = 30.0

SUBPROTOCOLS = ["sockeye.v2", "sockeye.v1"]
SERVER_CLOSE = (4001, "server bye \u2713")
CLIENT_CLOSE = (4000, "client bye \u2713")

SIZES = {
    "0": 0,
    "125": 125,
    "126": 126,
    "65535": 65535,
    "65536": 65536,
    "1MiB": 1 << 20,
    "16MiB": 16 << 20,
}

_PRINTABLE = bytes(32 + byte % 95 for byte in range(256))


def binary(size):
    """Deterministic, position-dependent bytes."""
    return random.Random(size).randbytes(size)


def text(size):
    """Printable ASCII: a text of exactly `size` UTF-8 bytes."""
    return binary(size).translate(_PRINTABLE).decode("ascii")


def utf8_texts():
    mixed = "h\u00e9llo w\u00f6rld \u20ac \U0001d11e \u2713 \U0001f980 \u03a9\u03bc\u03ad\u03b3\u03b1 \u65e5\u672c\u8a9e "
    return [
        "\u00e9",
        "\u20ac",
        "\U0001d11e",
        "\U0010ffff\ufffd\u07ff\u0800\uffff\U00010000",
        mixed,
        mixed * (65536 // len(mixed.encode()) + 3),
    ]


def mismatch(sent, received):
    sent = sent.encode() if isinstance(sent, str) else bytes(sent)
    received = received.encode() if isinstance(received, str) else bytes(received)
    first = next(
        (i for i, (a, b) in enumerate(zip(sent, received)) if a != b),
        min(len(sent), len(received)),
    )
    return (
        f"echo differs: sent {len(sent)} bytes, received {len(received)} bytes, "
        f"first difference at byte {first}"
    )


def result(check, error):
    if error is None:
        print(f"RESULT ok {check}", flush=True)
    else:
        why = str(error).replace("\n", " ")
        print(f"RESULT FAIL {check}: {why}", flush=True)
