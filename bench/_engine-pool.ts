/**
 * Child process of bench/engine.ts: `create DIR N` makes a pool on the N
 * image files DIR/m*.img with one big raid6 volume; `import DIR N` imports it
 * and prints, as JSON, how long the import took and the process's RSS.
 * Separate processes so that RSS is the import's alone.
 */
import { join } from 'node:path';
import { openMember } from '../main/engine/member-uri.js';
import { createPool, importPool } from '../main/engine/pool-open.js';

const [mode, dir, countText] = process.argv.slice(2);
const count = Number(countText);
const uris = Array.from({ length: count }, (_, i) => `file:${join(dir!, `m${i}.img`)}`);

if (mode === 'create') {
  const members = await Promise.all(uris.map(async (uri) => ({ uri, device: await openMember(uri) })));
  const pool = await createPool({ name: 'big', members });
  const free = pool.freeSpace('raid6');
  // Most of the pool, so the chunk map is as large as a full pool's.
  const size = Math.floor((free * 0.9) / 4096) * 4096;
  await pool.createVolume({ name: 'data', size, layout: 'raid6' });
  await pool.close();
  await Promise.all(members.map((m) => m.device.close()));
  console.log(JSON.stringify({ volumeBytes: size, chunks: pool.state.chunks.size }));
} else {
  const devices = await Promise.all(uris.map(async (uri) => ({ uri, device: await openMember(uri) })));
  const started = performance.now();
  const { pool } = await importPool(devices);
  const seconds = (performance.now() - started) / 1000;
  const rss = process.memoryUsage().rss;
  console.log(JSON.stringify({ seconds, rssBytes: rss, chunks: pool.state.chunks.size, volumes: pool.volumeNames() }));
  process.exit(0);
}
