// Node ws as a server for sockeye's client.
//
//   node server.mjs --compression off|on|peer-off [--tls-dir DIR]
//
// Speaks the suite's path protocol (see ../README.md): /echo/TAG,
// /ping/TAG, /close/TAG, /report/TAG. Prints `node-server: listening on
// ws://...` on stderr and what it saw as JSON lines on stdout. Stops by
// itself after ten minutes.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { WebSocketServer } from 'ws';

import * as common from '../web/common.mjs';

const LIFETIME_MS = 600_000;
const { values } = parseArgs({
  options: {
    compression: { type: 'string', default: 'off' },
    'tls-dir': { type: 'string' },
  },
});

const records = new Map();
function record(tag, event) {
  event.tag = tag;
  console.log(JSON.stringify(event));
  if (records.size < 10_000 || records.has(tag)) {
    if (!records.has(tag)) records.set(tag, []);
    records.get(tag).push(event);
  }
}

const options = {
  // The peer accepts permessage-deflate unless the mode says not (ws's
  // server default is off); with a threshold of 0 even the smallest
  // messages are compressed.
  perMessageDeflate: values.compression === 'peer-off' ? false : { threshold: 0 },
  maxPayload: common.MAX_PAYLOAD,
  // The first of ours the client offered, or none (ws's default takes the
  // client's first).
  handleProtocols: (offered) => common.SUBPROTOCOLS.find((protocol) => offered.has(protocol)) ?? false,
};
let httpsServer = null;
if (values['tls-dir']) {
  httpsServer = createServer({
    cert: readFileSync(join(values['tls-dir'], 'server.pem')),
    key: readFileSync(join(values['tls-dir'], 'server-key.pem')),
  });
  options.server = httpsServer;
} else {
  options.host = '127.0.0.1';
  options.port = 0;
}
const wss = new WebSocketServer(options);

function echo(ws, tag) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

wss.on('connection', (ws, request) => {
  const path = request.url;
  const [kind, tag = ''] = path.replace(/^\//, '').split(/\/(.*)/s);
  if (kind !== 'report') {
    record(tag, {
      event: 'open',
      path,
      offered_extensions: request.headers['sec-websocket-extensions'] ?? '',
      offered_protocols: request.headers['sec-websocket-protocol'] ?? '',
    });
  }
  ws.on('error', (error) => record(tag, { event: 'error', error: String(error) }));
  ws.on('pong', (data) => record(tag, { event: 'pong', data: data.toString() }));
  ws.on('close', (code, reason) => {
    if (kind === 'report') return;
    // `code` is the one the client sent (1005 without one, 1006 without a Close frame).
    record(tag, {
      event: 'closed',
      code: code === 1005 || code === 1006 ? null : code,
      reason: reason.toString(),
      clean: code !== 1006,
    });
  });
  switch (kind) {
    case 'echo':
      echo(ws, tag);
      break;
    case 'ping':
      ws.once('pong', (data) => {
        ws.send(`pong:${data.toString()}`);
        echo(ws, tag);
      });
      ws.ping('srv-ping');
      break;
    case 'close':
      ws.close(...common.SERVER_CLOSE);
      break;
    case 'report': {
      let waited = 0;
      const send = () => {
        const events = records.get(tag) ?? [];
        if (!events.some((event) => event.event === 'closed') && waited < 3000) {
          waited += 20;
          setTimeout(send, 20);
          return;
        }
        ws.send(JSON.stringify({ tag, events }));
        ws.close(1000);
      };
      send();
      break;
    }
    default:
      ws.close(1008, 'unknown path');
  }
});

function listening(address) {
  const scheme = httpsServer ? 'wss' : 'ws';
  console.error(`node-server: listening on ${scheme}://127.0.0.1:${address.port}`);
}
if (httpsServer) {
  httpsServer.listen(0, '127.0.0.1', () => listening(httpsServer.address()));
} else {
  wss.on('listening', () => listening(wss.address()));
}
setTimeout(() => process.exit(0), LIFETIME_MS).unref();
// Keep the process alive for the lifetime even when idle.
setTimeout(() => {}, LIFETIME_MS);
