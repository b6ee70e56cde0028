/**
 * Child process of bench/engine.ts (throughput): creates a pool on NBD
 * members (nbdkit sockets), one volume of the given layout filling the free
 * space, and exports it as "vol" on a Unix socket, so the load generator and
 * the engine never share a process.
 *
 *   node --import tsx bench/_engine-serve.ts LAYOUT WIDTH COPIES ALIGN SOCKET MEMBER_SOCKET...
 *
 * The volume's size is the free space rounded down to a multiple of ALIGN
 * bytes (the parent's fill block size, so the fill writes whole rows only).
 * Prints `ready {"size":BYTES,...}` once serving. On stdin it takes
 * `profile-start` and `profile-stop FILE` (a V8 CPU profile of just that
 * span, written as FILE.cpuprofile, the format `node --cpu-prof` writes).
 * On SIGTERM/SIGINT: closes the export, flushes and closes the pool and its
 * members, prints `closed`, exits 0.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createInterface } from 'node:readline';
import type { LayoutName } from '../main/engine/layout.js';
import { openMember } from '../main/engine/member-uri.js';
import { createPool } from '../main/engine/pool-open.js';
import { NbdServer } from '../main/nbd/server.js';

/** 64 MiB of data per slab plus its checksum table (slab-geometry.ts): 7 on a 512 MiB member, 15 on 1 GiB. */
const SLAB_SIZE = 64 * 1024 * 1024 + 64 * 1024;
const MiB = 1024 * 1024;

const [layout, widthText, copiesText, alignText, socket, ...memberSockets] = process.argv.slice(2) as [LayoutName, string, string, string, string, ...string[]];
if (!layout || !socket || memberSockets.length === 0) {
  console.error('usage: _engine-serve.ts LAYOUT WIDTH COPIES ALIGN SOCKET MEMBER_SOCKET...');
  process.exit(2);
}

const members = await Promise.all(
  memberSockets.map(async (s) => {
    const uri = `nbd+unix:///?socket=${s}`;
    return { uri, device: await openMember(uri) };
  }),
);
// force: the images carry the previous layout's pool (or fio's bytes).
const pool = await createPool({ name: 'bench', members, slabSize: SLAB_SIZE, force: true });
pool.on('log', (level, message) => {
  if (level !== 'info') console.error(`engine ${level}: ${message}`);
});
const copies = Number(copiesText) || undefined;
const width = Number(widthText);
const free = pool.freeSpace(layout, copies);
const align = Number(alignText) || MiB;
const size = Math.floor(free / align) * align;
const volume = await pool.createVolume({ name: 'vol', size, layout, width, copies });
const server = new NbdServer({ log: (l) => console.error(`engine nbd: ${l}`) });
server.addExport('vol', volume);
await server.listenUnix(socket);
process.stdout.write(`ready ${JSON.stringify({ size, spec: volume.spec, chunks: volume.chunks.length })}\n`);

// ---------------------------------------------------------------- profiling on request

let session: Session | undefined;
const commands = createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/, 2);
  void (async () => {
    try {
      if (cmd === 'profile-start') {
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.setSamplingInterval', { interval: 500 });
        await session.post('Profiler.start');
        process.stdout.write('profiling\n');
      } else if (cmd === 'profile-stop' && session && arg) {
        const { profile } = await session.post('Profiler.stop');
        session.disconnect();
        session = undefined;
        writeFileSync(arg, JSON.stringify(profile));
        process.stdout.write(`profiled ${arg}\n`);
      }
    } catch (error) {
      console.error(`engine child: ${cmd}: ${(error as Error).message}`);
    }
  })();
});

// ---------------------------------------------------------------- shutdown

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  commands.close();
  try {
    await server.close();
    await pool.close();
    await Promise.all(members.map((m) => m.device.close()));
    process.stdout.write('closed\n');
    process.exit(0);
  } catch (error) {
    console.error(`engine child: close failed: ${(error as Error).message}`);
    process.exit(1);
  }
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
