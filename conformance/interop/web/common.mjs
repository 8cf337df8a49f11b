// What the Node peers and the Chromium page share: payloads and the path
// protocol's constants (see ../README.md).

export const MAX_PAYLOAD = 64 * 1024 * 1024;
export const CHECK_TIMEOUT_MS = 30_000;
export const SUBPROTOCOLS = ['sockeye.v2', 'sockeye.v1'];
export const SERVER_CLOSE = [4001, 'server bye \u2713'];
export const CLIENT_CLOSE = [4000, 'client bye \u2713'];

export const SIZES = {
  0: 0,
  125: 125,
  126: 126,
  65535: 65535,
  65536: 65536,
  '1MiB': 1 << 20,
  '16MiB': 16 << 20,
};

/** Deterministic, position-dependent bytes (xorshift seeded by the size). */
export function binary(size) {
  const out = new Uint8Array(size);
  let state = (0x9e3779b9 ^ size) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[i] = state >>> 24;
  }
  return out;
}

/** Printable ASCII: a text of exactly `size` UTF-8 bytes. */
export function text(size) {
  const bytes = binary(size);
  for (let i = 0; i < size; i++) bytes[i] = 32 + (bytes[i] % 95);
  return new TextDecoder('latin1').decode(bytes);
}

export function utf8Texts() {
  const mixed = 'h\u00e9llo w\u00f6rld \u20ac \u{1d11e} \u2713 \u{1f980} \u03a9\u03bc\u03ad\u03b3\u03b1 \u65e5\u672c\u8a9e ';
  const mixedBytes = new TextEncoder().encode(mixed).length;
  return [
    '\u00e9',
    '\u20ac',
    '\u{1d11e}',
    '\u{10ffff}\ufffd\u07ff\u0800\uffff\u{10000}',
    mixed,
    mixed.repeat(Math.floor(65536 / mixedBytes) + 3),
  ];
}

/** Where two payloads (strings or byte arrays) first differ. */
export function mismatch(sent, received) {
  const bytes = (value) =>
    typeof value === 'string' ? new TextEncoder().encode(value) : new Uint8Array(value);
  const a = bytes(sent);
  const b = bytes(received);
  let first = 0;
  const end = Math.min(a.length, b.length);
  while (first < end && a[first] === b[first]) first++;
  return `echo differs: sent ${a.length} bytes, received ${b.length} bytes, first difference at byte ${first}`;
}

export function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Runs `work` with a timeout; resolves to null or the failure's text. */
export async function attempt(work, timeoutMs = CHECK_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    await Promise.race([work(), timeout]);
    return null;
  } catch (error) {
    return String(error && error.message ? error.message : error);
  } finally {
    clearTimeout(timer);
  }
}
