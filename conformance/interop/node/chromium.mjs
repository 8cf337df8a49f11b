// Drives Debian's Chromium (/usr/bin/chromium) headless with
// playwright-core: opens the interop page from the sockeye server under
// test and prints the page's RESULT lines as they come.
//
//   node chromium.mjs PAGE_URL --checks a,b,c --compression off|on
//        [--ws ws://HOST:PORT] [--peer ws://HOST:PORT] [--chromium PATH]
//        [--spki BASE64-SHA256]
//
// --ws is where the echo checks connect (default: the page's own server),
// --peer where the checks that need the server's report connect (default:
// --ws). playwright-core never downloads a browser; this uses the one apt
// installed.

import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    checks: { type: 'string' },
    compression: { type: 'string', default: 'off' },
    ws: { type: 'string' },
    peer: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    // base64 SHA-256 of the server's SubjectPublicKeyInfo: Chromium
    // trusts that key for https:// and wss:// (the test CA is not in its
    // store).
    spki: { type: 'string' },
  },
});
const pageUrl = positionals[0];
const wsBase = values.ws ?? `ws://${new URL(pageUrl).host}`;
const config = {
  checks: (values.checks ?? '').split(',').filter(Boolean),
  compression: values.compression,
  wsBase,
  peerBase: values.peer ?? wsBase,
};

const browser = await chromium.launch({
  executablePath: values.chromium,
  headless: true,
  // playwright-core gives each launch a fresh, empty profile directory.
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    ...(values.spki ? [`--ignore-certificate-errors-spki-list=${values.spki}`] : []),
  ],
  timeout: 60_000,
});
let status = 0;
try {
  const page = await browser.newPage();
  page.on('console', (message) => console.error(`page console: ${message.text()}`));
  page.on('pageerror', (error) => console.error(`page error: ${error}`));
  await page.exposeFunction('interopResult', (line) => console.log(line));
  await page.goto(pageUrl, { timeout: 30_000 });
  await page.waitForFunction(() => window.interopReady === true, null, { timeout: 30_000 });
  console.error(`chromium: ${await browser.version()}, page ${pageUrl}`);
  await page.evaluate((config) => window.interop.run(config), config);
} catch (error) {
  console.error(`chromium: ${error}`);
  status = 1;
} finally {
  await browser.close();
}
process.exit(status);
