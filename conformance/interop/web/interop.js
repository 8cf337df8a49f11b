// The interop checks run with the browser's WebSocket API. The driver
// (../node/chromium.mjs) calls window.interop.run(config) and receives
// each result through window.interopResult (or, without it, the return
// value). See ../README.md for the path protocol.

import * as common from './common.mjs';

class Conn {
  constructor(url, protocols) {
    this.ws = new WebSocket(url, protocols);
    this.ws.binaryType = 'arraybuffer';
    this.queue = [];
    this.waiters = [];
    this.closed = null;
    this.ws.addEventListener('message', (event) => this.push({ kind: 'message', data: event.data }));
    this.ws.addEventListener('error', () => this.push({ kind: 'error' }));
    this.ws.addEventListener('close', (event) => {
      this.closed = { kind: 'close', code: event.code, reason: event.reason, wasClean: event.wasClean };
      this.push(this.closed);
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener('open', () => resolve(this), { once: true });
      this.ws.addEventListener('close', (event) => reject(new Error(`connection failed (${event.code})`)), { once: true });
    });
  }

  push(event) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(event);
    else this.queue.push(event);
  }

  next() {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closed) return Promise.resolve(this.closed);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async message() {
    for (;;) {
      const event = await this.next();
      if (event.kind === 'message') return event.data;
      if (event.kind === 'close') throw new Error(`closed (${event.code} ${event.reason}) instead of a message`);
    }
  }

  async end() {
    for (;;) {
      const event = await this.next();
      if (event.kind === 'close') return event;
    }
  }

  async close(code = 1000, reason = '') {
    this.ws.close(code, reason);
    return this.end();
  }
}

function connect(base, path, protocols = []) {
  return new Conn(`${base}/${path}`, protocols).opened;
}

async function echo(conn, payload) {
  const isText = typeof payload === 'string';
  conn.ws.send(payload);
  const data = await conn.message();
  if ((typeof data === 'string') !== isText) {
    throw new Error(`sent ${isText ? 'text' : 'binary'}, the echo is ${typeof data === 'string' ? 'text' : 'binary'}`);
  }
  const same = isText ? data === payload : common.sameBytes(new Uint8Array(data), payload);
  if (!same) throw new Error(common.mismatch(payload, data));
}

async function closeNormally(conn) {
  const end = await conn.close(1000);
  if (!end.wasClean) throw new Error(`closing handshake not clean (${end.code})`);
}

async function serverClose(base, tag) {
  const conn = await connect(base, `report/${tag}`);
  const data = await conn.message();
  await conn.end();
  const report = JSON.parse(data);
  const closed = report.events.find((event) => event.event === 'closed');
  if (!closed) throw new Error(`the server recorded no close: ${data}`);
  return closed;
}

async function check(config, name, tag) {
  const base = config.wsBase;
  const peer = config.peerBase ?? base;
  const echoPath = `echo/${tag}`;
  switch (name) {
    case 'extensions': {
      const conn = await connect(base, echoPath);
      const negotiated = conn.ws.extensions.includes('permessage-deflate');
      if (negotiated !== (config.compression === 'on')) {
        throw new Error(
          `extensions is ${JSON.stringify(conn.ws.extensions)}, expected permessage-deflate ${config.compression === 'on' ? 'negotiated' : 'refused'}`,
        );
      }
      await echo(conn, 'hello');
      return closeNormally(conn);
    }
    case 'subprotocol':
    case 'subprotocol-none': {
      const offer = name === 'subprotocol' ? ['x-unknown', 'sockeye.v1'] : ['x-unknown'];
      const expected = name === 'subprotocol' ? 'sockeye.v1' : '';
      const conn = await connect(base, echoPath, offer);
      if (conn.ws.protocol !== expected) {
        throw new Error(`server chose ${JSON.stringify(conn.ws.protocol)}, expected ${JSON.stringify(expected)}`);
      }
      await echo(conn, 'hello');
      return closeNormally(conn);
    }
    case 'utf8': {
      const conn = await connect(base, echoPath);
      for (const text of common.utf8Texts()) await echo(conn, text);
      return closeNormally(conn);
    }
    case 'burst-1000': {
      const conn = await connect(base, echoPath);
      for (let i = 0; i < 1000; i++) conn.ws.send(`burst ${i}`);
      for (let i = 0; i < 1000; i++) {
        const data = await conn.message();
        if (data !== `burst ${i}`) throw new Error(`message ${i} is ${JSON.stringify(String(data).slice(0, 40))}, expected "burst ${i}"`);
      }
      return closeNormally(conn);
    }
    case 'server-ping': {
      // The browser answers the server's Ping by itself; the server says
      // when the Pong arrived.
      const conn = await connect(peer, `ping/${tag}`);
      const data = await conn.message();
      if (data !== 'pong:srv-ping') throw new Error(`server says ${JSON.stringify(data)}, expected "pong:srv-ping"`);
      return closeNormally(conn);
    }
    case 'close-client': {
      const [code, reason] = common.CLIENT_CLOSE;
      const conn = await connect(peer, echoPath);
      const end = await conn.close(code, reason);
      if (!end.wasClean) throw new Error(`closing handshake not clean (${end.code})`);
      const seen = await serverClose(peer, tag);
      if (seen.code !== code || seen.reason !== reason) {
        throw new Error(`server saw close ${seen.code} ${JSON.stringify(seen.reason)}, expected ${code} ${JSON.stringify(reason)}`);
      }
      return;
    }
    case 'close-server': {
      const [code, reason] = common.SERVER_CLOSE;
      const conn = await connect(peer, `close/${tag}`);
      const end = await conn.end();
      if (!end.wasClean || end.code !== code || end.reason !== reason) {
        throw new Error(
          `received close ${end.code} ${JSON.stringify(end.reason)} (clean: ${end.wasClean}), expected ${code} ${JSON.stringify(reason)}`,
        );
      }
      const seen = await serverClose(peer, tag);
      if (seen.code == null) throw new Error("the server saw no code in the browser's reply");
      return;
    }
    default: {
      const [kind, size] = name.split('-');
      if (!(size in common.SIZES) || !['text', 'binary'].includes(kind)) throw new Error('unknown check');
      const bytes = common.SIZES[size];
      const payload = kind === 'text' ? common.text(bytes) : common.binary(bytes);
      const conn = await connect(base, echoPath);
      await echo(conn, payload);
      return closeNormally(conn);
    }
  }
}

const log = (line) => {
  document.getElementById('log').textContent += `${line}\n`;
};

async function run(config) {
  const lines = [];
  const stamp = Date.now();
  for (const [index, name] of config.checks.entries()) {
    const tag = `chromium-${stamp}-${index}-${name}`;
    const failure = await common.attempt(() => check(config, name, tag));
    const line = failure === null ? `RESULT ok ${name}` : `RESULT FAIL ${name}: ${failure.replace(/\n/g, ' ')}`;
    lines.push(line);
    log(line);
    if (window.interopResult) await window.interopResult(line);
  }
  return lines;
}

window.interop = { run };
window.interopReady = true;
