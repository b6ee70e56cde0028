/**
 * Test helpers for jobs: pools of memory members, a foreground workload of
 * random reads and writes checked against a reference model while a job
 * runs, and the end check "redundancy is full": every member in turn fails
 * and the whole volume still reads as the model.
 */
import { truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { MemoryBlockDevice } from '../nbd/memory-device.js';
import type { BlockDevice } from '../nbd/block-device.js';
import { STRIPE_UNIT } from './layout.js';
import { openMember } from './member-uri.js';
import { createPool } from './pool-open.js';
import type { MemberSource, Pool } from './pool.js';
import type { Volume } from './volume.js';
import { pattern } from './test-pattern.js';

/** 16 rows of data per slab: 1 MiB of data and its checksum table. */
export const SLAB = 16 * STRIPE_UNIT + 64 * 1024;
export const METADATA = 1024 * 1024;
export const memberBytes = (slabs: number): number => METADATA + slabs * SLAB + 64 * 1024;

export function memorySources(count: number, slabs = 12, prefix = 'mem'): MemberSource[] {
  return Array.from({ length: count }, (_, i) => ({ uri: `${prefix}:${i}`, device: new MemoryBlockDevice(memberBytes(slabs)) }));
}

/**
 * Members as image files in `dir` (`${prefix}0.img`, …), opened as the engine
 * host opens them (native checksummed reads and uncached writes where the
 * addon runs).
 */
export async function imageSources(dir: string, count: number, prefix = 'm'): Promise<MemberSource[]> {
  const sources: MemberSource[] = [];
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `${prefix}${i}.img`);
    await writeFile(file, Buffer.alloc(0));
    await truncate(file, memberBytes(12));
    sources.push({ uri: `file:${file}`, device: await openMember(`file:${file}`) });
  }
  return sources;
}

export async function newPool(sources: MemberSource[], spares: MemberSource[] = []): Promise<Pool> {
  const pool = await createPool({ name: 'tank', members: sources, spares, slabSize: SLAB, metadataBytes: METADATA });
  // Tests start their jobs by hand; auto-repair.test.ts turns this back on.
  await pool.setPolicy({ autoRepair: false });
  // Small steps, so that tests see checkpoints, pauses and several batches per slab.
  // The rate cap makes a job last long enough (~0.25 s per MiB moved) for a foreground workload to run beside it.
  pool.jobs.tuning = { checkpointMs: 0, checkpointBytes: 4 * STRIPE_UNIT, batchRows: 2, depth: 3, maxRate: 4 * 1024 * 1024 };
  return pool;
}

/** The volume's content as the model has it, written through the volume. */
export async function fill(volume: Volume, seed: number): Promise<Buffer> {
  const model = pattern(seed, volume.size);
  // Leave some blocks never written, so unwritten blocks are moved too.
  model.fill(0, Math.floor(volume.size * 0.9));
  await volume.write(0, model.subarray(0, Math.floor(volume.size * 0.9)));
  return model;
}

/**
 * Random reads and writes (one at a time per lane, lanes on disjoint
 * ranges) until `until` resolves; every read must equal the model. Returns
 * the operations done.
 */
export async function workload(volume: Volume, model: Buffer, until: Promise<unknown>, seed = 7, lanes = 2): Promise<number> {
  let stop = false;
  void until.then(
    () => (stop = true),
    () => (stop = true),
  );
  let ops = 0;
  let x = seed >>> 0 || 1;
  const random = (n: number): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const lane = async (index: number): Promise<void> => {
    const span = Math.floor(volume.size / lanes);
    const base = index * span;
    while (!stop) {
      let offset = base + random(span - 1);
      let length = 1 + random(Math.min(span - (offset - base), 150_000));
      // Half the requests whole 4 KiB blocks: those spanning rows take the volume's ranged path.
      if (random(2) === 0) {
        offset -= offset % 4096;
        length = Math.max(4096, length - (length % 4096));
        if (offset + length > base + span) length = base + span - offset - ((base + span - offset) % 4096);
        if (length <= 0) continue;
      }
      if (random(2) === 0) {
        const data = pattern(random(1 << 30), length);
        await volume.write(offset, data);
        data.copy(model, offset);
      } else {
        const got = await volume.read(offset, length);
        if (!got.equals(model.subarray(offset, offset + length))) {
          throw new Error(`read ${offset}+${length} during the job differs from the model at byte ${got.findIndex((b, i) => b !== model[offset + i])}`);
        }
      }
      ops++;
      // Give the job room to run between foreground requests.
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)));
  return ops;
}

/** Every member in turn fails, and everything still reads as the model; then it returns. */
export async function expectFullRedundancy(pool: Pool, devices: ReadonlyMap<string, BlockDevice>, volumes: ReadonlyArray<[Volume, Buffer]>): Promise<void> {
  for (const [volume, model] of volumes) expect((await volume.read(0, volume.size)).equals(model), `${volume.name} before`).toBe(true);
  for (const member of [...pool.members.values()]) {
    if (!member.usable) throw new Error(`member ${member.label} is ${member.state} after the job`);
    await pool.failMember(member.uuid);
    for (const [volume, model] of volumes) {
      const got = await volume.read(0, volume.size);
      expect(got.equals(model), `${volume.name} with ${member.label} failed`).toBe(true);
    }
    await pool.returnMember(member.uuid, devices.get(member.label)!);
  }
}

export function deviceMap(...lists: MemberSource[][]): Map<string, BlockDevice> {
  return new Map(lists.flat().map((s) => [s.uri, s.device]));
}
