// Node ws echo server for sockeye's benchmark harness.
//
//   node echo.mjs [--listen HOST:PORT] [--deflate]
//
// Echoes every message to its sender, as ws's documentation writes it.
// With --deflate it accepts permessage-deflate at zlib level 1 with
// context takeover (sockeye's defaults) and compresses every message.
// Prints `listening on HOST:PORT` on stdout once it accepts connections.

import { parseArgs } from 'node:util';

import { WebSocketServer } from 'ws';

const { values } = parseArgs({
  options: {
    listen: { type: 'string', default: '127.0.0.1:0' },
    deflate: { type: 'boolean', default: false },
  },
});
const split = values.listen.lastIndexOf(':');
const wss = new WebSocketServer({
  host: values.listen.slice(0, split),
  port: Number(values.listen.slice(split + 1)),
  maxPayload: 64 * 1024 * 1024,
  perMessageDeflate: values.deflate ? { zlibDeflateOptions: { level: 1 }, threshold: 0 } : false,
});
wss.on('listening', () => {
  const { address, port } = wss.address();
  console.log(`listening on ${address}:${port}`);
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
