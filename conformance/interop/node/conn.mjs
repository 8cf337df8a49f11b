// A ws connection whose events are awaited one at a time.

import WebSocket from 'ws';

export class Conn {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closed = null;
    ws.on('message', (data, isBinary) => this.push({ kind: 'message', data, isBinary }));
    ws.on('ping', (data) => this.push({ kind: 'ping', data }));
    ws.on('pong', (data) => this.push({ kind: 'pong', data }));
    ws.on('error', (error) => this.push({ kind: 'error', error }));
    ws.on('close', (code, reason) => {
      this.closed = { kind: 'close', code, reason: reason.toString() };
      this.push(this.closed);
    });
  }

  push(event) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(event);
    else this.queue.push(event);
  }

  /** The next event; after the end, the close event again. */
  next() {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closed) return Promise.resolve(this.closed);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The next data message; throws on a close or an error. */
  async message() {
    for (;;) {
      const event = await this.next();
      if (event.kind === 'message') return event;
      if (event.kind === 'close') throw new Error(`closed (${event.code} ${event.reason}) instead of a message`);
      if (event.kind === 'error') throw event.error;
    }
  }

  /** Waits for the close event. */
  async end() {
    for (;;) {
      const event = await this.next();
      if (event.kind === 'close') return event;
    }
  }

  /** Closes with `code` and `reason` and waits for the end. */
  async close(code = 1000, reason = '') {
    this.ws.close(code, reason);
    return this.end();
  }
}

/** Opens a client connection; resolves with the Conn and the response headers. */
export function open(url, protocols, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    const conn = new Conn(ws);
    let headers = null;
    ws.on('upgrade', (response) => {
      headers = response.headers;
    });
    ws.once('open', () => resolve({ conn, headers }));
    ws.once('unexpected-response', (_request, response) =>
      reject(new Error(`handshake refused: HTTP ${response.statusCode}`)),
    );
    ws.once('error', reject);
  });
}
