/**
 * The write hole of a degraded parity row, cut at its worst moment: a data
 * column's new bytes are on disk, the parity's are not, and power goes. With
 * the row journal the gone column reads exactly as before; without it (a
 * member labelled with no room for one) it reads as garbage, silently —
 * which is what this test shows first, so it cannot pass by accident.
 */
import { describe, expect, it } from 'vitest';
import type { BlockDevice } from '../nbd/block-device.js';
import { MemoryBlockDevice } from '../nbd/memory-device.js';
import { STRIPE_UNIT } from './layout.js';
import { layouts } from './layouts.js';
import { memberGeometry } from './on-disk-format.js';
import { journalSlots, RowJournal } from './row-journal.js';
import { createPool, importPool } from './pool-open.js';
import type { Pool } from './pool.js';
import { pattern } from './test-pattern.js';

const SLAB = 16 * STRIPE_UNIT + 64 * 1024; // 1 MiB of data per slab
const DEFAULT_METADATA = 8 * 1024 * 1024; // what a small member gets: room for a row journal
const NO_JOURNAL_METADATA = 1024 * 1024; // too little room for one
const BLOCK = 4096;

/** A memory disk whose writes at or past `holdFrom` never land nor settle (the power goes before they do). */
class HeldDisk {
  readonly disk: MemoryBlockDevice;
  holdFrom = Infinity;
  readonly device: BlockDevice;

  constructor(size: number) {
    this.disk = new MemoryBlockDevice(size);
    const never = new Promise<void>(() => {});
    this.device = new Proxy(this.disk, {
      get: (target, prop) => {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        if (prop === 'write' || prop === 'writev' || prop === 'writeZeroes' || prop === 'trim') {
          return (offset: number, ...rest: unknown[]) => (offset >= this.holdFrom ? never : (value as (...a: unknown[]) => Promise<void>).call(target, offset, ...rest));
        }
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
  }

  /** What the disk holds at this instant, as a disk of its own. */
  async snapshot(): Promise<MemoryBlockDevice> {
    const copy = new MemoryBlockDevice(this.disk.size);
    await copy.write(0, await this.disk.read(0, this.disk.size));
    return copy;
  }
}

async function until(condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('timed out');
}

/**
 * raid5 over 4 members, written with A and flushed; the member of row 0's
 * second data unit fails; then 4 KiB of the first data unit are rewritten
 * with B and the power goes once B is on its disk but before the parity is.
 * Returns what the re-imported volume reads for row 0's first two units.
 */
async function tornDegradedWrite(metadataBytes: number, layout: 'raid5' | 'raid6' = 'raid5', reopenFirst = false, goneColumns = 1) {
  const width = layout === 'raid5' ? 4 : 5;
  const member = metadataBytes + 6 * SLAB + 64 * 1024;
  const disks = Array.from({ length: width }, () => new HeldDisk(member));
  let pool: Pool = await createPool({ name: 'tank', members: disks.map((d, i) => ({ uri: `mem:${i}`, device: d.device })), slabSize: SLAB, metadataBytes });
  let volume = pool.volume((await pool.createVolume({ name: 'v', size: 1024 * 1024, layout, width })).name);
  const a = pattern(1, 1024 * 1024);
  await volume.write(0, a);
  await pool.flush();

  const chunk = pool.state.chunks.get(pool.state.volumes[0]!.chunks[0]!)!;
  const map = layouts[layout].row(chunk.spec, 0);
  let memberOf = (column: number) => pool.members.get(chunk.slabs[column]!.member)!;
  const diskOf = (column: number) => disks[Number(memberOf(column).label.slice('mem:'.length))]!;
  const written = map.data[0]![0]!;
  const gone = map.data[1]![0]!;
  const alsoGone = goneColumns > 1 ? map.data[2]![0]! : undefined;
  await pool.failMember(memberOf(gone).uuid);
  if (alsoGone !== undefined) await pool.failMember(memberOf(alsoGone).uuid);
  if (reopenFirst) {
    // An earlier open that wrote the journal headers several times (records, flushes); then a clean stop and an import.
    for (let i = 0; i < 3; i++) {
      await volume.write(8 * BLOCK, a.subarray(8 * BLOCK, 9 * BLOCK)); // row 0 again: the same parity member holds its records
      await pool.flush();
    }
    await pool.close();
    pool = (await importPool(disks.filter((d) => d !== diskOf(gone)).map((d) => ({ uri: `mem:${disks.indexOf(d)}`, device: d.device })))).pool;
    volume = pool.volume('v');
    memberOf = (column: number) => pool.members.get(chunk.slabs[column]!.member)!;
  }
  // The parity members' slabs take nothing more; their reservations (labels, intent log, journal) still do.
  for (const c of [map.p!, ...(map.q !== undefined ? [map.q] : [])]) diskOf(c).holdFrom = memberOf(c).dataOffset;

  const b = pattern(2, BLOCK);
  void volume.write(0, b); // never finishes: its parity write is held
  const at = memberOf(written).slabOffset(chunk.slabs[written]!.slab, 0);
  await until(async () => (await diskOf(written).disk.read(at, BLOCK)).equals(b));

  // Power cut: the failed member's disk is not brought back.
  const survivors = disks.filter((d) => d !== diskOf(gone) && (alsoGone === undefined || d !== diskOf(alsoGone)));
  const sources = await Promise.all(survivors.map(async (d) => ({ uri: `mem:${disks.indexOf(d)}`, device: await d.snapshot() })));
  const { pool: again } = await importPool(sources);
  const logs: string[] = [];
  again.on('log', (_level, message) => logs.push(message));
  const read = await again.volume('v').read(0, 2 * STRIPE_UNIT);
  const firstBlock = read.subarray(0, BLOCK);
  const result = {
    firstBlockIsOldOrNew: firstBlock.equals(a.subarray(0, BLOCK)) || firstBlock.equals(b),
    goneUnitIntact:
      read.subarray(STRIPE_UNIT, 2 * STRIPE_UNIT).equals(a.subarray(STRIPE_UNIT, 2 * STRIPE_UNIT)) &&
      (alsoGone === undefined || (await again.volume('v').read(2 * STRIPE_UNIT, STRIPE_UNIT)).equals(a.subarray(2 * STRIPE_UNIT, 3 * STRIPE_UNIT))),
    restIntact: (await again.volume('v').read(2 * STRIPE_UNIT, a.length - 2 * STRIPE_UNIT)).equals(a.subarray(2 * STRIPE_UNIT)),
    logs,
  };
  await again.close();
  return result;
}

describe('row journal: the write hole of a degraded parity row', () => {
  it('without a journal, the gone column of a torn row reads wrong (the hole this closes)', async () => {
    const r = await tornDegradedWrite(NO_JOURNAL_METADATA);
    expect(r.firstBlockIsOldOrNew).toBe(true);
    expect(r.goneUnitIntact).toBe(false);
  });

  it('raid5: with the journal, the gone column reads exactly as before the torn write', async () => {
    const r = await tornDegradedWrite(DEFAULT_METADATA);
    expect(r.firstBlockIsOldOrNew).toBe(true);
    expect(r.goneUnitIntact).toBe(true);
    expect(r.restIntact).toBe(true);
  });

  it('raid5: the same after an earlier open of the pool wrote the journal headers more often than this one', async () => {
    const r = await tornDegradedWrite(DEFAULT_METADATA, 'raid5', true);
    expect(r.firstBlockIsOldOrNew).toBe(true);
    expect(r.goneUnitIntact).toBe(true);
    expect(r.restIntact).toBe(true);
  });

  it('raid6: the same, with both parity members holding the journal', async () => {
    const r = await tornDegradedWrite(DEFAULT_METADATA, 'raid6');
    expect(r.firstBlockIsOldOrNew).toBe(true);
    expect(r.goneUnitIntact).toBe(true);
    expect(r.restIntact).toBe(true);
  });

  it('raid6 with two data columns gone: both are journalled in one group, and both read exactly as before', async () => {
    const r = await tornDegradedWrite(DEFAULT_METADATA, 'raid6', false, 2);
    expect(r.firstBlockIsOldOrNew).toBe(true);
    expect(r.goneUnitIntact).toBe(true);
    expect(r.restIntact).toBe(true);
  });

  it('a flush retires the records: a clean reopen replays nothing, and degraded writes keep going past the slots', async () => {
    const member = DEFAULT_METADATA + 6 * SLAB + 64 * 1024;
    const sources = Array.from({ length: 4 }, (_, i) => ({ uri: `mem:${i}`, device: new MemoryBlockDevice(member) }));
    const pool = await createPool({ name: 'tank', members: sources, slabSize: SLAB });
    const volume = await pool.createVolume({ name: 'v', size: 4 * 1024 * 1024, layout: 'raid5', width: 4 });
    const a = pattern(3, 4 * 1024 * 1024);
    await volume.write(0, a);
    await pool.failMember([...pool.members.keys()][1]!);
    // Many more degraded row writes than one member has journal slots (7 here), none flushed by the caller.
    const b = pattern(4, 4 * 1024 * 1024);
    await Promise.all(Array.from({ length: 64 }, (_, i) => volume.write(i * 64 * 1024, b.subarray(i * 64 * 1024, (i + 1) * 64 * 1024))));
    expect((await volume.read(0, b.length)).equals(b)).toBe(true);
    await pool.close();
    // Records were written (one per row write) and every one is retired now.
    const g = memberGeometry(member, SLAB);
    const areas = sources.map((s) => [s.uri, { device: s.device, offset: g.journalOffset, bytes: g.journalBytes }] as const);
    expect(journalSlots(g.journalBytes)).toBe(7);
    const header = await sources[0]!.device.read(g.journalOffset, 2 * BLOCK);
    expect(header.includes(Buffer.from('SPNDLRJH'))).toBe(true);
    expect(await RowJournal.readLive(pool.state.uuid, areas)).toEqual([]);
    const { pool: again } = await importPool(sources.filter((_, i) => i !== 1));
    expect((await again.volume('v').read(0, b.length)).equals(b)).toBe(true);
    await again.close();
  });

  it('records live until a flush retires them, and a member started again (back from a failure) holds none', async () => {
    const device = new MemoryBlockDevice(4 * 1024 * 1024);
    const area = { device, offset: 0, bytes: 1024 * 1024 };
    const pool = '0b6e4a4c-2f61-4c1e-9a53-5d3c8e7f1a20';
    const failed: string[] = [];
    const journal = new RowJournal(pool, (uuid) => (uuid === 'm' ? area : undefined), () => Promise.resolve(), (uuid) => {
      failed.push(uuid);
      return Promise.resolve();
    });
    const data = pattern(5, 2 * BLOCK);
    const ticket = await journal.write({ chunkId: 3, row: 9, firstBlock: 4, units: [{ unit: 1, data }], targets: ['m'] });
    const live = await RowJournal.readLive(pool, [['m', area]]);
    expect(live).toEqual([{ sequence: 1, chunkId: 3, row: 9, firstBlock: 4, blocks: 2, units: new Map([[1, data]]) }]);
    // A flush that began before the row write finished does not retire it; the next one does.
    const early = journal.flushStarting();
    journal.done(ticket);
    await journal.flushed(early);
    expect(await RowJournal.readLive(pool, [['m', area]])).toHaveLength(1);
    await journal.flushed(journal.flushStarting());
    expect(await RowJournal.readLive(pool, [['m', area]])).toEqual([]);
    // Another record, never retired; the member fails and comes back: started again, it holds nothing live.
    await journal.write({ chunkId: 3, row: 10, firstBlock: 0, units: [{ unit: 0, data }], targets: ['m'] });
    expect(await RowJournal.readLive(pool, [['m', area]])).toHaveLength(1);
    await journal.start(['m']);
    expect(await RowJournal.readLive(pool, [['m', area]])).toEqual([]);
    // Torn: a record whose data does not match its CRC never reached its row.
    await journal.write({ chunkId: 4, row: 0, firstBlock: 0, units: [{ unit: 2, data }], targets: ['m'] });
    const slots = journalSlots(area.bytes);
    for (let slot = 0; slot < slots; slot++) {
      const at = 2 * BLOCK + slot * (BLOCK + STRIPE_UNIT) + BLOCK;
      const head = await device.read(at - BLOCK, BLOCK);
      if (head.readUInt32LE(60) === 4) await device.write(at, Buffer.alloc(BLOCK, 0xee));
    }
    expect(await RowJournal.readLive(pool, [['m', area]])).toEqual([]);
    expect(failed).toEqual([]);
  });
});

