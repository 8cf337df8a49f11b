// Node ws as a client of a sockeye server.
//
//   node client.mjs URL --checks a,b,c --compression off|on|peer-off [--ca FILE]
//
// Runs each check on its own connections against a server that speaks the
// suite's path protocol (see ../README.md) and prints one RESULT line each.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import * as common from '../web/common.mjs';
import { open } from './conn.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    checks: { type: 'string' },
    compression: { type: 'string', default: 'off' },
    ca: { type: 'string' },
  },
});
const base = positionals[0].replace(/\/$/, '');
const compression = values.compression;
const ca = values.ca ? readFileSync(values.ca) : undefined;

function connect(path, protocols = []) {
  return open(`${base}/${path}`, protocols, {
    // The peer offers permessage-deflate unless the mode says not; with a
    // threshold of 0 even the smallest messages are compressed.
    perMessageDeflate: compression === 'peer-off' ? false : { threshold: 0 },
    maxPayload: common.MAX_PAYLOAD,
    ca,
  });
}

async function echo(conn, payload) {
  const isText = typeof payload === 'string';
  conn.ws.send(payload, { binary: !isText });
  const { data, isBinary } = await conn.message();
  if (isBinary === isText) {
    throw new Error(`sent ${isText ? 'text' : 'binary'}, the echo is ${isBinary ? 'binary' : 'text'}`);
  }
  const same = isText ? data.toString('utf8') === payload : common.sameBytes(data, payload);
  if (!same) throw new Error(common.mismatch(payload, isText ? data.toString('utf8') : data));
}

async function closeNormally(conn) {
  const end = await conn.close(1000);
  if (end.code === 1006) throw new Error('closing handshake not clean (1006)');
}

async function serverClose(tag) {
  const { conn } = await connect(`report/${tag}`);
  const { data } = await conn.message();
  await conn.end();
  const report = JSON.parse(data.toString('utf8'));
  const closed = report.events.find((event) => event.event === 'closed');
  if (!closed) throw new Error(`the server recorded no close: ${JSON.stringify(report)}`);
  return closed;
}

async function run(check, tag) {
  const echoPath = `echo/${tag}`;
  switch (check) {
    case 'extensions': {
      const { conn, headers } = await connect(echoPath);
      const header = headers['sec-websocket-extensions'];
      const negotiated = header !== undefined && header.includes('permessage-deflate');
      if (negotiated !== (compression === 'on')) {
        throw new Error(
          `Sec-WebSocket-Extensions is ${JSON.stringify(header)}, expected permessage-deflate ${compression === 'on' ? 'negotiated' : 'refused'}`,
        );
      }
      await echo(conn, 'hello');
      return closeNormally(conn);
    }
    case 'subprotocol':
    case 'subprotocol-none': {
      const offer = check === 'subprotocol' ? ['x-unknown', 'sockeye.v1'] : ['x-unknown'];
      const expected = check === 'subprotocol' ? 'sockeye.v1' : '';
      let opened;
      try {
        opened = await connect(echoPath, offer);
      } catch (error) {
        // ws refuses a 101 without Sec-WebSocket-Protocol when it offered
        // some (stricter than RFC 6455 section 4.1): that refusal is how it
        // reports that the server chose none, which is what is checked.
        if (check === 'subprotocol-none' && error.message === 'Server sent no subprotocol') return;
        throw error;
      }
      const { conn } = opened;
      if (conn.ws.protocol !== expected) {
        throw new Error(`server chose ${JSON.stringify(conn.ws.protocol)}, expected ${JSON.stringify(expected)}`);
      }
      await echo(conn, 'hello');
      return closeNormally(conn);
    }
    case 'utf8': {
      const { conn } = await connect(echoPath);
      for (const text of common.utf8Texts()) await echo(conn, text);
      return closeNormally(conn);
    }
    case 'burst-1000': {
      const { conn } = await connect(echoPath);
      for (let i = 0; i < 1000; i++) conn.ws.send(`burst ${i}`);
      for (let i = 0; i < 1000; i++) {
        const { data } = await conn.message();
        const text = data.toString('utf8');
        if (text !== `burst ${i}`) throw new Error(`message ${i} is ${JSON.stringify(text.slice(0, 40))}, expected "burst ${i}"`);
      }
      return closeNormally(conn);
    }
    case 'ping': {
      const { conn } = await connect(echoPath);
      conn.ws.ping('cli-ping');
      for (;;) {
        const event = await conn.next();
        if (event.kind === 'pong') {
          if (event.data.toString() !== 'cli-ping') throw new Error(`pong carries ${JSON.stringify(event.data.toString())}`);
          break;
        }
        if (event.kind === 'close' || event.kind === 'error') throw new Error(`ended before the pong: ${event.code ?? event.error}`);
      }
      return closeNormally(conn);
    }
    case 'server-ping': {
      const { conn } = await connect(`ping/${tag}`);
      let pinged = false;
      for (;;) {
        const event = await conn.next();
        if (event.kind === 'ping') {
          if (event.data.toString() !== 'srv-ping') throw new Error(`ping carries ${JSON.stringify(event.data.toString())}`);
          pinged = true;
        } else if (event.kind === 'message') {
          const text = event.data.toString('utf8');
          if (text !== 'pong:srv-ping') throw new Error(`server says ${JSON.stringify(text)}, expected "pong:srv-ping"`);
          break;
        } else if (event.kind === 'close' || event.kind === 'error') {
          throw new Error(`ended before the server saw a pong: ${event.code ?? event.error}`);
        }
      }
      if (!pinged) throw new Error('the server saw a pong, but no ping event was reported');
      return closeNormally(conn);
    }
    case 'close-client': {
      const [code, reason] = common.CLIENT_CLOSE;
      const { conn } = await connect(echoPath);
      const end = await conn.close(code, reason);
      if (end.code === 1006 || end.code === 1005) throw new Error(`the server's reply carried no code (${end.code})`);
      const seen = await serverClose(tag);
      if (seen.code !== code || seen.reason !== reason) {
        throw new Error(`server saw close ${seen.code} ${JSON.stringify(seen.reason)}, expected ${code} ${JSON.stringify(reason)}`);
      }
      return;
    }
    case 'close-server': {
      const [code, reason] = common.SERVER_CLOSE;
      const { conn } = await connect(`close/${tag}`);
      const end = await conn.end();
      if (end.code !== code || end.reason !== reason) {
        throw new Error(`received close ${end.code} ${JSON.stringify(end.reason)}, expected ${code} ${JSON.stringify(reason)}`);
      }
      const seen = await serverClose(tag);
      if (seen.code == null) throw new Error("the server saw no code in the client's reply");
      return;
    }
    default: {
      const [kind, size] = check.split('-');
      if (!(size in common.SIZES) || !['text', 'binary'].includes(kind)) throw new Error('unknown check');
      const bytes = common.SIZES[size];
      const payload = kind === 'text' ? common.text(bytes) : common.binary(bytes);
      const { conn } = await connect(echoPath);
      await echo(conn, payload);
      return closeNormally(conn);
    }
  }
}

const checks = (values.checks ?? '').split(',').filter(Boolean);
for (const [index, check] of checks.entries()) {
  const tag = `node-${process.pid}-${index}-${check}`;
  const failure = await common.attempt(() => run(check, tag));
  console.log(failure === null ? `RESULT ok ${check}` : `RESULT FAIL ${check}: ${failure.replace(/\n/g, ' ')}`);
}
process.exit(0);
