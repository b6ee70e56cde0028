/**
 * The demo pool: what the app opens on the first time, and what `spindle
 * demo` makes. Six sparse image files of mixed sizes in the state directory
 * (`demo/disk0.img` … `disk5.img`), served over NBD by the engine host
 * (demo-disks.ts) so the pool reaches them as it reaches real disks, a pool
 * "demo" of the first five with the
 * sixth as its spare, a raid1 and a raid5 volume with some data written.
 * Marked demo, so simulated faults (corruption included) are allowed on it.
 *
 * Idempotent: when the pool exists it is reported; when only its images do
 * (it was exported), they are imported again; otherwise it is made afresh.
 */
import { mkdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DemoCreated } from '../../preload/api.js';
import { RegistryError, type PoolRegistry } from './pool-registry.js';

const MiB = 1024 * 1024;
export const DEMO_POOL_NAME = 'demo';
/** 32 MiB of data per slab, plus its checksum table: small enough that 256 MiB images hold several. */
const DEMO_SLAB_SIZE = 32 * MiB + 64 * 1024;
/** Mixed sizes on purpose: the allocator's handling of them is part of the demo. The last is the spare. */
const IMAGE_SIZES = [256, 320, 384, 448, 512, 384].map((mib) => mib * MiB);
const VOLUMES = [
  { name: 'photos', layout: 'raid1', size: 128 * MiB },
  { name: 'archive', layout: 'raid5', size: 384 * MiB },
] as const;
/** Bytes of sample data written at the start of each volume. */
const SAMPLE_BYTES = 4 * MiB;

const running = new WeakMap<PoolRegistry, Promise<DemoCreated>>();

export function createDemoPool(registry: PoolRegistry): Promise<DemoCreated> {
  // Two requests at once must not both truncate the images.
  let pending = running.get(registry);
  if (!pending) {
    pending = makeDemo(registry).finally(() => running.delete(registry));
    running.set(registry, pending);
  }
  return pending;
}

async function makeDemo(registry: PoolRegistry): Promise<DemoCreated> {
  const dir = join(registry.stateDir, 'demo');
  const images = IMAGE_SIZES.map((_, i) => join(dir, `disk${i}.img`));
  // Members over NBD, served by the engine host (demo-disks.ts), as real disks are by the helper.
  const uris = images.map((path) => registry.demoDisks.uriOf(path));
  const known = await registry.has(DEMO_POOL_NAME);
  if (known && !known.demo) throw new RegistryError(`a pool named ${DEMO_POOL_NAME} exists and is not the demo pool; export it first`);
  if (known) {
    try {
      return { created: false, pool: await registry.status(DEMO_POOL_NAME), images };
    } catch {
      // Known but unavailable (its images were removed): forget it and make a new one.
      await registry.exportPool(DEMO_POOL_NAME);
    }
  }
  if (await allExist(images)) {
    try {
      await registry.demoDisks.serve(images);
      const imported = await registry.import({ members: uris, demo: true });
      const { unrecognized: _unrecognized, ...pool } = imported;
      return { created: false, pool, images };
    } catch {
      // Not a pool (a creation interrupted before its labels were written): make it again below.
    }
  }
  // Made afresh: stop serving old images first (a served image's size is fixed while it is open).
  await registry.demoDisks.close();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const [i, path] of images.entries()) {
    const file = await open(path, 'w', 0o600);
    try {
      await file.truncate(IMAGE_SIZES[i]!);
    } finally {
      await file.close();
    }
  }
  await registry.demoDisks.serve(images);
  await registry.create({
    name: DEMO_POOL_NAME,
    members: uris.slice(0, -1),
    spares: uris.slice(-1),
    slabSize: DEMO_SLAB_SIZE,
    demo: true,
    force: true,
  });
  for (const volume of VOLUMES) await registry.createVolume({ pool: DEMO_POOL_NAME, name: volume.name, size: volume.size, layout: volume.layout });
  const pool = await registry.pool(DEMO_POOL_NAME);
  for (const volume of VOLUMES) await pool.volume(volume.name).write(0, sampleData(volume.name));
  await pool.flush();
  return { created: true, pool: await registry.status(DEMO_POOL_NAME), images };
}

/** A readable banner, then bytes that differ from block to block (so a copy mix-up would show). */
function sampleData(volume: string): Buffer {
  const data = Buffer.alloc(SAMPLE_BYTES);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(Math.imul(i, 2654435761) >>> 0, i);
  data.write(`Spindle demo volume "${volume}". Try: spindle fail demo MEMBER, spindle corrupt demo/${volume} 0\n`.padEnd(512, ' '), 0, 'utf8');
  return data;
}

async function allExist(paths: readonly string[]): Promise<boolean> {
  for (const path of paths) {
    if (!(await stat(path).then((s) => s.isFile(), () => false))) return false;
  }
  return true;
}
