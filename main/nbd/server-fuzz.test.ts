/**
 * Fuzzing the server: 10,000 random and mutated handshakes and request
 * streams from a seeded PRNG (set NBD_FUZZ_SEED to replay one run). Each
 * case opens a connection, sends its bytes, half-closes, and must see the
 * server close the connection. Afterwards: no crash, no hang, no
 * connection or socket left open, no device call outside the export or
 * its alignment, and the server still serves a well-behaved client.
 */
import net from 'node:net';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { NbdClient } from './client.js';
import { MemoryBlockDevice } from './memory-device.js';
import * as P from './protocol.js';
import { NbdServer } from './server.js';
import { InstrumentedDevice, cleanupAll, prng, tempDir, waitFor } from './test-support.js';

const CASES = 10_000;
const PARALLEL = 24;
const SIZE = 1 << 20;
const seed = Number(process.env.NBD_FUZZ_SEED ?? 20241126);

afterAll(cleanupAll);

type Rng = () => number;
const int = (r: Rng, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)];

const NAMES = ['', 'ro', 'a512', 'nope', 'x'.repeat(300)];

function randomOption(r: Rng): Buffer {
  const name = pick(r, NAMES);
  switch (int(r, 9)) {
    case 0:
      return P.encodeOption(P.NBD_OPT_LIST);
    case 1:
      return P.encodeOption(P.NBD_OPT_INFO, P.encodeInfoRequest(name, [int(r, 5), int(r, 5)]));
    case 2:
      return P.encodeOption(P.NBD_OPT_STRUCTURED_REPLY);
    case 3:
      return P.encodeOption(P.NBD_OPT_LIST_META_CONTEXT, P.encodeMetaContextRequest(name, r() < 0.5 ? [] : ['base:', 'base:allocation', 'x:y']));
    case 4:
      return P.encodeOption(P.NBD_OPT_SET_META_CONTEXT, P.encodeMetaContextRequest(name, ['base:allocation']));
    case 5:
      return P.encodeOption(int(r, 20), randomBytes(r, int(r, 64)));
    case 6: {
      // A header whose length disagrees with what follows.
      const o = P.encodeOption(int(r, 12), randomBytes(r, int(r, 32)));
      o.writeUInt32BE(pick(r, [0, 1, 7, 4096, 70_000, 0xffffffff]), 12);
      return o;
    }
    case 7:
      return P.encodeOption(P.NBD_OPT_ABORT);
    default:
      return P.encodeOption(P.NBD_OPT_GO, P.encodeInfoRequest(name, [P.NBD_INFO_BLOCK_SIZE]));
  }
}

function randomBytes(r: Rng, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(r, 256);
  return b;
}

/** A handshake that reaches transmission on a real export. */
function goodHandshake(r: Rng): { bytes: Buffer[]; name: string } {
  const name = pick(r, ['', 'ro', 'a512']);
  const bytes = [P.encodeClientFlags(r() < 0.5 ? 3 : 1)];
  if (r() < 0.6) {
    bytes.push(P.encodeOption(P.NBD_OPT_STRUCTURED_REPLY));
    if (r() < 0.7) bytes.push(P.encodeOption(P.NBD_OPT_SET_META_CONTEXT, P.encodeMetaContextRequest(name, ['base:allocation'])));
  }
  if (r() < 0.15) bytes.push(P.encodeOption(P.NBD_OPT_EXPORT_NAME, Buffer.from(name)));
  else bytes.push(P.encodeOption(P.NBD_OPT_GO, P.encodeInfoRequest(name, [P.NBD_INFO_BLOCK_SIZE])));
  return { bytes, name };
}

function randomRequest(r: Rng): Buffer[] {
  const type = r() < 0.85 ? pick(r, [0, 0, 1, 1, 2, 3, 4, 5, 6, 7]) : int(r, 65536);
  const flags = r() < 0.6 ? 0 : r() < 0.6 ? 1 << int(r, 5) : int(r, 65536);
  const offset = pick(r, [0, 512, 4096, SIZE - 512, SIZE - 1, SIZE, SIZE + 4096, int(r, SIZE), 2 ** 40, 2 ** 52]);
  const length = pick(r, [0, 1, 100, 512, 4096, 65536, int(r, SIZE), P.NBD_MAX_PAYLOAD + 1, 0xffffffff]);
  const req = P.encodeRequest({ flags, type, cookieHi: int(r, 2 ** 32), cookieLo: int(r, 2 ** 32), offset, length });
  if (r() < 0.05) req.writeBigUInt64BE(0xffffffffffffff00n, 16);
  if (type !== P.NBD_CMD_WRITE) return [req];
  // Send the payload in full when small, otherwise a part (the stream then ends mid-request).
  const send = length <= 256 * 1024 && r() < 0.9 ? length : Math.min(length, int(r, 65536));
  return [req, randomBytes(r, send)];
}

function mutate(r: Rng, buf: Buffer, from: number): void {
  if (buf.length <= from) return;
  const flips = 1 + int(r, 3);
  for (let i = 0; i < flips; i++) buf[from + int(r, buf.length - from)] ^= 1 << int(r, 8);
}

function makeCase(r: Rng): Buffer {
  if (r() < 0.4) {
    // Handshake fuzzing: random options, then maybe a final GO/EXPORT_NAME.
    const parts = [P.encodeClientFlags(r() < 0.85 ? pick(r, [1, 3]) : int(r, 2 ** 32))];
    const n = int(r, 6);
    for (let i = 0; i < n; i++) parts.push(randomOption(r));
    const buf = Buffer.concat(parts);
    if (r() < 0.5) mutate(r, buf, 0);
    return r() < 0.2 ? buf.subarray(0, int(r, buf.length + 1)) : buf;
  }
  const hs = goodHandshake(r);
  const head = Buffer.concat(hs.bytes);
  const reqs: Buffer[] = [];
  const n = 1 + int(r, 6);
  for (let i = 0; i < n; i++) reqs.push(...randomRequest(r));
  if (r() < 0.1) reqs.push(P.encodeRequest({ flags: 0, type: P.NBD_CMD_DISC, cookieHi: 0, cookieLo: 0, offset: 0, length: 0 }));
  const buf = Buffer.concat([head, ...reqs]);
  if (r() < 0.3) mutate(r, buf, head.length);
  return buf;
}

function pipeHandles(): number {
  return process.getActiveResourcesInfo().filter((t) => t === 'PipeWrap').length;
}

it(`survives ${CASES} random and mutated handshakes and requests (seed ${seed})`, async () => {
  const dir = await tempDir();
  let logLines = 0;
  const server = new NbdServer({ log: () => logLines++, handshakeTimeoutMs: 5000 });
  const devs = {
    '': new InstrumentedDevice(new MemoryBlockDevice(SIZE)),
    ro: new InstrumentedDevice(new MemoryBlockDevice(SIZE)),
    a512: new InstrumentedDevice(new MemoryBlockDevice(SIZE, { minimumBlockSize: 512 })),
  };
  server.addExport('', devs['']);
  server.addExport('ro', devs.ro, { readOnly: true });
  server.addExport('a512', devs.a512);
  const sock = path.join(dir, 'fuzz.sock');
  await server.listenUnix(sock);
  const baseline = pipeHandles();

  const r = prng(seed);
  const cases = Array.from({ length: CASES }, () => makeCase(r));
  let open = 0;
  let maxOpen = 0;
  let next = 0;
  const runCase = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = net.connect(sock);
      open++;
      maxOpen = Math.max(maxOpen, open);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`case ${i} (seed ${seed}) hung: the server did not close the connection`));
      }, 15_000);
      s.on('connect', () => s.end(cases[i]));
      s.on('data', () => {}); // drain replies so the server never blocks on us
      s.on('error', () => {});
      s.on('close', () => {
        open--;
        clearTimeout(timer);
        resolve();
      });
    });
  const worker = async (): Promise<void> => {
    while (next < CASES) await runCase(next++);
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));

  expect(open).toBe(0);
  await waitFor(() => server.connectionCount === 0, 'server connections to drop to 0');
  await waitFor(() => pipeHandles() <= baseline, 'socket handles to be released');

  // Validation ran before every handler: no device call was out of range or unaligned.
  for (const [name, dev] of Object.entries(devs)) {
    for (const c of dev.calls) {
      expect(c.offset + c.length, `${name} ${c.op}`).toBeLessThanOrEqual(SIZE);
      if (name === 'a512') expect((c.offset % 512) + (c.length % 512), `${c.op} ${c.offset}+${c.length}`).toBe(0);
      if (name === 'ro') expect(['read', 'flush', 'cache', 'blockStatus']).toContain(c.op);
    }
  }
  const total = Object.values(devs).reduce((n, d) => n + d.calls.length, 0);
  expect(total).toBeGreaterThan(500); // the fuzzer did reach the devices
  expect(logLines).toBeGreaterThan(1000); // and exercised the refusal paths

  const c = await NbdClient.connect(`nbd+unix:///?socket=${sock}`);
  await c.write(0, Buffer.from('still alive'));
  expect((await c.read(0, 11)).toString()).toBe('still alive');
  await c.close();
  await server.close();
  expect(maxOpen).toBeLessThanOrEqual(PARALLEL);
}, 150_000);
