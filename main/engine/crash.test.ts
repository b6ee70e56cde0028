/**
 * kill -9 of a process serving a pool while a client writes and flushes:
 * after reimport every write acknowledged before the last completed flush is
 * there, every other block holds a value that was written to it, copies and
 * parity agree, and nothing reads as corrupt.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NbdClient } from '../nbd/client.js';
import { tempDir } from '../nbd/test-support.js';
import { openMember } from './member-uri.js';
import { importPool } from './pool-open.js';

const fixture = fileURLToPath(new URL('./serve-pool.fixture.ts', import.meta.url));
const BLOCK = 4096;
const VOLUME = 16 * 1024 * 1024;
const BLOCKS = VOLUME / BLOCK;

function start(dir: string, layout: string, width: number, members: number, mode: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir, layout, String(width), String(members), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('ready')) resolve(child);
    });
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`fixture exited (${code}) before ready: ${out}`)));
  });
}

/** Each block's content names the write: (block index, write number) in its first 8 bytes, then a fill. */
function blockFor(index: number, version: number): Buffer {
  const b = Buffer.alloc(BLOCK, (index + version) & 0xff);
  b.writeUInt32LE(index, 0);
  b.writeUInt32LE(version, 4);
  return b;
}

async function storm(uri: string, killAfterMs: number, child: ChildProcess, baseline: Uint32Array, firstVersion: number) {
  const client = await NbdClient.connect(uri);
  // For each block: the version made durable by the last completed flush, and versions written since.
  const durable = Uint32Array.from(baseline);
  const since = new Map<number, Set<number>>();
  let version = firstVersion;
  let stop = false;
  setTimeout(() => {
    stop = true;
    child.kill('SIGKILL');
  }, killAfterMs);
  try {
    while (!stop) {
      const batch: Array<Promise<void>> = [];
      const written: Array<[number, number]> = [];
      for (let i = 0; i < 16; i++) {
        const index = ((version - firstVersion) * 2654435761) % BLOCKS >>> 0;
        version++;
        written.push([index, version]);
        if (!since.has(index)) since.set(index, new Set());
        since.get(index)!.add(version);
        batch.push(client.write(index * BLOCK, blockFor(index, version)));
      }
      await Promise.all(batch);
      await client.flush();
      // Flushed: the newest version of each written block is durable, earlier ones are superseded.
      for (const [index, v] of written) {
        if (v > durable[index]!) durable[index] = v;
        since.set(index, new Set([...since.get(index)!].filter((x) => x > durable[index]!)));
      }
    }
  } catch {
    // the server died mid-request: expected
  }
  await client.close().catch(() => {});
  return { durable, since };
}

describe('kill -9 during a write storm', () => {
  for (const [layout, width, members, mode] of [
    ['raid1', 2, 3, 'healthy'],
    ['raid5', 4, 4, 'healthy'],
    ['raid6', 5, 5, 'healthy'],
    // A member gone before the first write: every row write is journalled (row-journal.ts).
    ['raid5', 4, 4, 'degraded'],
    ['raid6', 5, 5, 'degraded'],
  ] as const) {
    it(`${layout}${mode === 'degraded' ? ', a member failed' : ''}: flushed writes survive, nothing reads as corrupt, copies and parity agree`, async () => {
      const dir = await tempDir('spindle-crash-');
      try {
        // What the volume durably holds before each run: zero, then what the previous run left.
        let baseline = new Uint32Array(BLOCKS);
        for (const [run, killAfterMs] of [400, 900].entries()) {
          const child = await start(dir, layout, width, members, mode);
          const exited = new Promise((resolve) => child.on('exit', resolve));
          const { durable, since } = await storm(`nbd+unix:///v?socket=${join(dir, 'v.sock')}`, killAfterMs, child, baseline, 1 + run * 1_000_000);
          await exited;
          const sources = await Promise.all(
            Array.from({ length: members }, async (_, i) => {
              const uri = `file:${join(dir, `m${i}.img`)}`;
              return { uri, device: await openMember(uri) };
            }),
          );
          const { pool } = await importPool(sources);
          const volume = pool.volume('v');
          const all = await volume.read(0, VOLUME);
          let checked = 0;
          for (let index = 0; index < BLOCKS; index++) {
            const got = all.subarray(index * BLOCK, (index + 1) * BLOCK);
            const allowed = new Set([durable[index]!, ...(since.get(index) ?? [])]);
            const v = got.readUInt32LE(4);
            const expected = v === 0 && durable[index] === 0 ? Buffer.alloc(BLOCK) : blockFor(index, v);
            if (durable[index] === 0 && got.every((x) => x === 0)) continue;
            expect(allowed.has(v), `block ${index} holds version ${v}, durable ${durable[index]}`).toBe(true);
            expect(got.equals(expected), `block ${index} is torn`).toBe(true);
            checked++;
          }
          baseline = new Uint32Array(BLOCKS).map((_, index) => all.readUInt32LE(index * BLOCK + 4));
          expect(checked).toBeGreaterThan(0);
          let fixed = 0;
          for (const chunk of volume.chunks) for (let row = 0; row < chunk.rows; row++) fixed += await chunk.repairRow(row);
          expect(fixed).toBe(0);
          await pool.close();
          await Promise.all(sources.map((s) => s.device.close()));
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }, 120_000);
  }
});
