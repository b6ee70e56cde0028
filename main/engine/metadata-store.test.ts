import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DisconnectedError,
  type BlockDevice,
  type BlockDeviceCapabilities,
  type WriteOptions,
} from '../nbd/block-device.js';
import { MemoryBlockDevice } from '../nbd/memory-device.js';
import { MetadataError, MetadataStore, type ImportResult, type StoreMemberInput } from './metadata-store.js';
import { crc32c } from './metadata-crc.js';
import {
  decodeSuperblock,
  encodeLogBatch,
  encodeSuperblock,
  EventKind,
  LOG_RECORD_HEADER_BYTES,
  memberGeometry,
  METADATA_BLOCK,
  SUPERBLOCK_BYTES,
  SUPERBLOCK_V1_BYTES,
  type MemberGeometry,
  type Superblock,
} from './on-disk-format.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Small members with a small log, so tests wrap the ring and fill it quickly. */
const MEMBER_BYTES = 512 * KiB;
const SLAB = 64 * KiB;
const METADATA = 128 * KiB;
const GEOMETRY = memberGeometry(MEMBER_BYTES, SLAB, { metadataBytes: METADATA });

// ------------------------------------------------------------------ a simulated disk

/**
 * The bytes of one disk: what is durable, and writes still in its volatile
 * cache (lost or kept at a crash; flush makes them durable). Several
 * SimDevices may share one Disk: two handles of one disk.
 */
class Disk {
  durable: Buffer;
  cache: Array<{ offset: number; data: Buffer }> = [];
  /** What survived the crash, once there was one. */
  crashImage: Buffer | undefined;
  constructor(size: number) {
    this.durable = Buffer.alloc(size);
  }
  live(): Buffer {
    return this.range(0, this.durable.length);
  }
  /** Bytes as the host sees them: durable, overlaid by the cache. */
  range(offset: number, length: number): Buffer {
    const b = Buffer.from(this.durable.subarray(offset, offset + length));
    for (const w of this.cache) {
      const from = Math.max(offset, w.offset);
      const to = Math.min(offset + length, w.offset + w.data.length);
      if (from < to) w.data.copy(b, from - offset, from - w.offset, to - w.offset);
    }
    return b;
  }
  flush(): void {
    for (const w of this.cache) w.data.copy(this.durable, w.offset);
    this.cache = [];
  }
}

type CrashMode = 'disconnect' | 'drop' | 'torn';
/**
 * What a crash does to writes not yet flushed: all land, none land, or only
 * the latest lands (a disk may persist its cache in any order, so a missing
 * flush between two dependent writes shows up here).
 */
type CachePolicy = 'keep' | 'lose' | 'reorder';

/** Counts writes across all devices; at write `at` the power fails (or one device dies). */
class FaultClock {
  writes = 0;
  crashed = false;
  /** Faults apply only once armed (after format). */
  armed = false;
  disks: Disk[] = [];
  onCrash: (() => void) | undefined;
  constructor(
    readonly plan?: {
      /** The write (counted from arming) at which it happens, or a test on each write. */
      at?: number;
      when?: (offset: number, data: Buffer) => boolean;
      mode: CrashMode;
      cache: CachePolicy;
      only?: 'one-device';
      /** Bytes of the torn write that land (default: the first half). */
      tearBytes?: number;
    },
  ) {}

  /** Called for every write; returns what the device does with it. */
  tick(disk: Disk, offset: number, data: Buffer): 'apply' | 'ignore' | 'throw' {
    if (!this.armed) return 'apply';
    if (this.crashed && !this.plan?.only) return this.plan!.mode === 'disconnect' ? 'throw' : 'ignore';
    this.writes++;
    const plan = this.plan;
    if (!plan || (this.writes !== plan.at && !plan.when?.(offset, data))) return 'apply';
    const torn = data.subarray(0, plan.tearBytes ?? data.length >> 1);
    if (plan.only) {
      // One device dies at this write: its cache is kept or lost, the torn half may land.
      if (plan.cache === 'keep') disk.flush();
      disk.cache = [];
      if (plan.mode === 'torn') torn.copy(disk.durable, offset);
      dead.add(disk);
      return 'throw';
    }
    this.crashed = true;
    this.onCrash?.();
    for (const d of this.disks) {
      d.crashImage = Buffer.from(d.durable);
      const survivors = plan.cache === 'keep' ? d.cache : plan.cache === 'reorder' ? d.cache.slice(-1) : [];
      for (const w of survivors) w.data.copy(d.crashImage, w.offset);
      d.cache = [];
    }
    if (plan.mode === 'torn') torn.copy(disk.crashImage!, offset);
    return plan.mode === 'disconnect' ? 'throw' : 'ignore';
  }
}
const dead = new WeakSet<Disk>();

class SimDevice implements BlockDevice {
  readonly size: number;
  readonly capabilities: BlockDeviceCapabilities;
  writeCount = 0;
  constructor(
    readonly disk: Disk,
    private readonly clock: FaultClock = new FaultClock(),
    readOnly = false,
  ) {
    this.size = disk.durable.length;
    if (!clock.disks.includes(disk)) clock.disks.push(disk);
    this.capabilities = {
      readOnly,
      canFlush: true,
      canTrim: false,
      canWriteZeroes: false,
      canFastZero: false,
      canCache: false,
      canMultiConn: false,
      minimumBlockSize: 1,
      preferredBlockSize: 4096,
    };
  }
  private alive(): void {
    if (dead.has(this.disk) || (this.clock.crashed && this.clock.plan?.mode === 'disconnect' && !this.clock.plan.only)) {
      throw new DisconnectedError('simulated disk is gone');
    }
  }
  async read(offset: number, length: number): Promise<Buffer> {
    this.alive();
    return this.disk.range(offset, length);
  }
  async write(offset: number, data: Uint8Array, _options?: WriteOptions): Promise<void> {
    this.alive();
    const copy = Buffer.from(data);
    const action = this.clock.tick(this.disk, offset, copy);
    if (action === 'throw') throw new DisconnectedError('simulated power loss');
    if (action === 'ignore') return;
    this.writeCount++;
    this.disk.cache.push({ offset, data: copy });
  }
  async flush(): Promise<void> {
    this.alive();
    if (this.clock.crashed && !this.clock.plan?.only) return;
    this.disk.flush();
  }
  async trim(): Promise<void> {
    throw new Error('not used');
  }
  async writeZeroes(): Promise<void> {
    throw new Error('not used');
  }
  async close(): Promise<void> {}
}

function disks(n: number, size = MEMBER_BYTES): Disk[] {
  return Array.from({ length: n }, () => new Disk(size));
}

function members(devices: readonly BlockDevice[]): StoreMemberInput[] {
  return devices.map((device) => ({ uuid: randomUUID(), device }));
}

async function formatPool(devices: readonly BlockDevice[], extra: { replicas?: number; state?: string } = {}) {
  const input = members(devices);
  const store = await MetadataStore.format({
    poolUuid: randomUUID(),
    members: input,
    slabSize: SLAB,
    initialState: Buffer.from(extra.state ?? 'S0'),
    metadataBytes: METADATA,
    replicas: extra.replicas,
  });
  return { store, uuids: input.map((m) => m.uuid) };
}

/** Fresh devices over copies of the given images (fault-free unless given a clock). */
function reopen(images: readonly Buffer[], clock?: FaultClock): SimDevice[] {
  return images.map((image) => {
    const d = new Disk(image.length);
    image.copy(d.durable);
    return new SimDevice(d, clock);
  });
}

function text(result: ImportResult): { state: string; records: string[] } {
  return { state: result.state.toString(), records: result.records.map((r) => r.toString()) };
}

async function expectMetadataError(promise: Promise<unknown>, code: string): Promise<MetadataError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected MetadataError ${code}`).toBeInstanceOf(MetadataError);
  expect((caught as MetadataError).code, (caught as Error).message).toBe(code);
  return caught as MetadataError;
}

/** Deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ------------------------------------------------------------------ basics

describe('MetadataStore: format, append, checkpoint, import', () => {
  it('returns the same state and records, in order, from all members', async () => {
    const devices = disks(4).map((d) => new SimDevice(d));
    const { store, uuids } = await formatPool(devices);
    expect(store.members().filter((m) => m.isReplica)).toHaveLength(3);
    const gens = [await store.append(Buffer.from('r1')), await store.append(Buffer.from('r2'))];
    expect(gens).toEqual([2, 3]);
    await store.checkpoint(Buffer.from('S1'));
    await store.append(Buffer.from('r3'));
    await store.append(Buffer.alloc(9000, 'x'));
    await store.close();

    const result = await MetadataStore.import(devices);
    expect(result.state.toString()).toBe('S1');
    expect(result.records.map((r) => r.toString())).toEqual(['r3', 'x'.repeat(9000)]);
    expect(result.generation).toBe(store.generation);
    expect(result.members.map((m) => m.uuid).sort()).toEqual([...uuids].sort());
    expect(result.members.filter((m) => m.status === 'current')).toHaveLength(3);
    expect(result.members.filter((m) => m.status === 'not-replica')).toHaveLength(1);
    expect(result.members[0]!.geometry).toEqual(GEOMETRY);
  });

  it('works on MemoryBlockDevice with the default geometry', async () => {
    const devices = [0, 1].map(() => new MemoryBlockDevice(300 * MiB));
    const input = members(devices);
    const store = await MetadataStore.format({ poolUuid: randomUUID(), members: input, slabSize: 16 * MiB, initialState: Buffer.from('hello') });
    await store.append(Buffer.from('a'));
    await store.checkpoint(Buffer.alloc(2 * MiB, 3));
    await store.append(Buffer.from('b'));
    const result = await MetadataStore.import(devices);
    // Buffer.equals: a deep toEqual over 2 MiB takes seconds.
    expect(result.state.equals(Buffer.alloc(2 * MiB, 3))).toBe(true);
    expect(text(result).records).toEqual(['b']);
    expect(result.members[0]!.geometry.metadataBytes).toBe(8 * MiB);
  });

  it('holds the checkpoint of a 1.5-million-slab pool (16 bytes a slab) on 64 GiB members', async () => {
    const devices = [0, 1, 2].map(() => new MemoryBlockDevice(64 * 1024 * MiB));
    const input = members(devices);
    const store = await MetadataStore.format({ poolUuid: randomUUID(), members: input, slabSize: 256 * MiB, initialState: Buffer.alloc(0) });
    const state = Buffer.alloc(1_500_000 * 16);
    for (let i = 0; i < state.length; i += 4) state.writeUInt32LE(i * 2654435761 >>> 0, i);
    await store.checkpoint(state);
    await store.append(Buffer.from('after'));
    const result = await MetadataStore.import(devices);
    expect(result.state.equals(state)).toBe(true);
    expect(text(result).records).toEqual(['after']);
    expect(result.members[0]!.geometry.metadataBytes).toBe(64 * MiB);
  });

  it('serialises concurrent calls in call order and commits waiting appends together', async () => {
    const devices = disks(3).map((d) => new SimDevice(d));
    const { store } = await formatPool(devices);
    const before = devices.map((d) => d.writeCount);
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < 40; i++) calls.push(store.append(Buffer.from(`r${i}`)));
    calls.push(store.checkpoint(Buffer.from('S1')));
    for (let i = 40; i < 50; i++) calls.push(store.append(Buffer.from(`r${i}`)));
    const results = await Promise.all(calls);
    const gens = results.filter((r): r is number => typeof r === 'number');
    expect(gens).toEqual([...gens].sort((a, b) => a - b));
    expect(new Set(gens).size).toBe(50);
    // One write per batch per replica, not one per record.
    const writes = devices.map((d, i) => d.writeCount - before[i]!);
    expect(Math.max(...writes)).toBeLessThan(20);
    const result = await MetadataStore.import(devices);
    expect(text(result)).toEqual({ state: 'S1', records: Array.from({ length: 10 }, (_, i) => `r${i + 40}`) });
  });

  it('reports the log filling, refuses a record that does not fit, and wraps the ring after checkpoints', async () => {
    const devices = disks(3).map((d) => new SimDevice(d));
    const { store } = await formatPool(devices);
    let n = 0;
    let state = 'S0';
    let records: string[] = [];
    for (let round = 0; round < 12; round++) {
      while (store.logFillRatio < 0.7) {
        const body = `${round}:${n++}:` + 'y'.repeat((n * 977) % 6000);
        await store.append(Buffer.from(body));
        records.push(body);
      }
      expect(store.logFillRatio).toBeLessThanOrEqual(1);
      if (round === 5) {
        const error = await expectMetadataError(store.append(Buffer.alloc(GEOMETRY.logBytes)), 'LOG_FULL');
        expect(error.message).toMatch(/checkpoint first/);
      }
      state = `S${round + 1}`;
      await store.checkpoint(Buffer.from(state));
      records = [];
      expect(store.logFillRatio).toBe(0);
      const tail = `after-${round}`;
      await store.append(Buffer.from(tail));
      records.push(tail);
      const result = await MetadataStore.import(devices);
      expect(text(result)).toEqual({ state, records });
    }
  });

  it('imports from any subset holding an up-to-date replica; stale replicas give the older generation', async () => {
    const d = disks(4);
    const devices = d.map((x) => new SimDevice(x));
    const { store, uuids } = await formatPool(devices);
    await store.append(Buffer.from('r1'));
    await store.checkpoint(Buffer.from('S1'));
    await store.append(Buffer.from('r2'));
    const replicas = store.members().filter((m) => m.isReplica).map((m) => uuids.indexOf(m.uuid));
    const nonReplica = [0, 1, 2, 3].find((i) => !replicas.includes(i))!;
    const staleImage = d[replicas[2]!]!.live();
    // The third replica drops out; the others go on.
    store.memberFailed(uuids[replicas[2]!]!);
    await store.append(Buffer.from('r3'));
    await store.checkpoint(Buffer.from('S2'));
    await store.append(Buffer.from('r4'));
    const expected = { state: 'S2', records: ['r4'] };

    for (const subset of [[replicas[0]!], [replicas[1]!, nonReplica], [replicas[0]!, replicas[1]!, nonReplica]]) {
      const result = await MetadataStore.import(subset.map((i) => devices[i]!));
      expect(text(result), `subset ${subset}`).toEqual(expected);
    }
    // Only the stale replica: its older history, and it says what it saw.
    const [stale] = reopen([staleImage]);
    const old = await MetadataStore.import([stale!]);
    expect(text(old)).toEqual({ state: 'S1', records: ['r2'] });
    expect(old.members).toEqual([expect.objectContaining({ uuid: uuids[replicas[2]!], isReplica: true, status: 'current' })]);
    expect(old.generation).toBeLessThan(store.generation);
    // With the up-to-date members too, the stale one is reported as stale.
    const all = await MetadataStore.import([stale!, devices[replicas[0]!]!, devices[replicas[1]!]!]);
    expect(text(all)).toEqual(expected);
    expect(all.members.find((m) => m.uuid === uuids[replicas[2]!])).toMatchObject({ status: 'stale' });
    // The member that was not a replica was promoted when the third replica dropped out.
    expect(store.members().find((m) => m.uuid === uuids[nonReplica])).toMatchObject({ isReplica: true, upToDate: true });
  });

  it('refuses to rewind silently when a member label shows newer metadata than the replicas given', async () => {
    const d = disks(3);
    const devices = d.map((x) => new SimDevice(x));
    // One replica, so that the rewound pool below has no reason to promote the other member.
    const { store, uuids } = await formatPool(devices, { replicas: 1 });
    await store.append(Buffer.from('r1'));
    const replica = uuids.findIndex((u) => store.members().find((m) => m.uuid === u)!.isReplica);
    const nonReplica = uuids.findIndex((u) => !store.members().find((m) => m.uuid === u)!.isReplica);
    const staleImage = d[replica]!.live();
    for (let i = 0; i < 5; i++) await store.append(Buffer.from(`later${i}`));
    await store.checkpoint(Buffer.from('S1')); // labels every member with the new generation (8)
    const [oldReplica, newerMember] = reopen([staleImage, d[nonReplica]!.live()]);
    const error = await expectMetadataError(MetadataStore.import([oldReplica!, newerMember!]), 'NEWER_METADATA_MISSING');
    expect(error.message).toMatch(/allowRewind/);
    const rewound = await MetadataStore.import([oldReplica!, newerMember!], { allowRewind: true });
    expect(text(rewound)).toEqual({ state: 'S0', records: ['r1'] });
    expect(rewound.members.map((m) => m.status).sort()).toEqual(['current', 'not-replica']);
    // Once the rewound pool writes, the member's label no longer names the abandoned generation.
    await rewound.store.append(Buffer.from('n1'));
    expect(text(await MetadataStore.import([oldReplica!, newerMember!]))).toEqual({ state: 'S0', records: ['r1', 'n1'] });
  });

  it('brings a stale replica up to date on the next write, not on import', async () => {
    const d = disks(3);
    const devices = d.map((x) => new SimDevice(x));
    const { store, uuids } = await formatPool(devices);
    await store.append(Buffer.from('r1'));
    const staleImage = d[2]!.live();
    store.memberFailed(uuids[2]!);
    await store.append(Buffer.from('r2'));
    d[2]!.durable = Buffer.from(staleImage); // the member comes back with what it had

    const images = d.map((x) => x.live());
    const imported = await MetadataStore.import(devices);
    expect(imported.members.find((m) => m.uuid === uuids[2])).toMatchObject({ status: 'stale' });
    expect(d.every((x, i) => x.live().equals(images[i]!))).toBe(true); // import only read

    await imported.store.append(Buffer.from('r3'));
    expect(imported.store.members().every((m) => m.upToDate)).toBe(true);
    const [alone] = reopen([d[2]!.live()]);
    expect(text(await MetadataStore.import([alone!]))).toEqual({ state: 'S0', records: ['r1', 'r2', 'r3'] });
  });
});

// ------------------------------------------------------------------ replicas and membership

describe('MetadataStore: replica failures and membership', () => {
  it('promotes another member when a replica fails, before the append resolves', async () => {
    const d = disks(4);
    const clock = new FaultClock();
    const devices = d.map((x) => new SimDevice(x, clock));
    const failed: string[] = [];
    const input = members(devices);
    const store = await MetadataStore.format({
      poolUuid: randomUUID(),
      members: input,
      slabSize: SLAB,
      initialState: Buffer.from('S0'),
      metadataBytes: METADATA,
      onMemberFailed: (uuid) => failed.push(uuid),
    });
    await store.append(Buffer.from('r1'));
    const victim = store.members().find((m) => m.isReplica)!.uuid;
    dead.add(d[input.findIndex((m) => m.uuid === victim)]!);
    await store.append(Buffer.from('r2'));
    expect(failed).toEqual([victim]);
    const status = store.members();
    expect(status.filter((m) => m.upToDate)).toHaveLength(3);
    expect(status.find((m) => m.uuid === victim)).toMatchObject({ online: false, upToDate: false });
    // Any one of the three up-to-date replicas alone has everything.
    for (const m of status.filter((s) => s.upToDate)) {
      const [copy] = reopen([d[input.findIndex((i) => i.uuid === m.uuid)]!.live()]);
      expect(text(await MetadataStore.import([copy!]))).toEqual({ state: 'S0', records: ['r1', 'r2'] });
    }
  });

  it('lets the pool take a member offline while an append to it is in flight', async () => {
    const d = disks(4);
    const devices = d.map((x) => new SimDevice(x));
    const failed: string[] = [];
    const input = members(devices);
    const store = await MetadataStore.format({
      poolUuid: randomUUID(),
      members: input,
      slabSize: SLAB,
      initialState: Buffer.from('S0'),
      metadataBytes: METADATA,
      onMemberFailed: (uuid) => failed.push(uuid),
    });
    const replica = store.members().find((m) => m.isReplica)!.uuid;
    const pending = [store.append(Buffer.from('r1')), store.append(Buffer.from('r2'))];
    await Promise.resolve(); // the batch has started writing
    store.memberFailed(replica);
    await Promise.all(pending);
    await store.checkpoint(Buffer.from('S1'));
    await store.append(Buffer.from('r3'));
    expect(failed).toEqual([]); // the pool knows already
    expect(store.members().filter((m) => m.upToDate)).toHaveLength(3);
    const others = devices.filter((_, i) => input[i]!.uuid !== replica);
    expect(text(await MetadataStore.import(others))).toEqual({ state: 'S1', records: ['r3'] });
  });

  it('fails the store when every replica fails, and says so', async () => {
    const d = disks(2);
    const devices = d.map((x) => new SimDevice(x));
    const { store } = await formatPool(devices);
    for (const x of d) dead.add(x);
    await expectMetadataError(store.append(Buffer.from('lost')), 'NO_REPLICAS');
    await expectMetadataError(store.append(Buffer.from('after')), 'NO_REPLICAS');
  });

  it('takes a returning member back after checking it, and refuses a foreign one', async () => {
    const d = disks(3);
    const devices = d.map((x) => new SimDevice(x));
    const { store, uuids } = await formatPool(devices);
    await store.append(Buffer.from('r1'));
    store.memberFailed(uuids[1]!);
    await store.append(Buffer.from('r2'));
    await store.checkpoint(Buffer.from('S1'));
    await store.append(Buffer.from('r3'));
    expect(store.members().find((m) => m.uuid === uuids[1])).toMatchObject({ online: false });
    await expectMetadataError(store.setMemberOnline(uuids[1]!, devices[0]!), 'DUPLICATE_DEVICE');
    const other = await formatPool([new SimDevice(new Disk(MEMBER_BYTES))]);
    await expectMetadataError(store.setMemberOnline(uuids[1]!, new SimDevice(new Disk(MEMBER_BYTES))), 'WRONG_MEMBER');
    expect(other.store.members()).toHaveLength(1);
    await store.setMemberOnline(uuids[1]!, devices[1]!);
    expect(store.members().every((m) => m.upToDate)).toBe(true);
    const [alone] = reopen([d[1]!.live()]);
    expect(text(await MetadataStore.import([alone!]))).toEqual({ state: 'S1', records: ['r3'] });
  });

  it('adds members, removes them (wiping their labels) and keeps the replica count', async () => {
    const d = disks(5);
    const devices = d.map((x) => new SimDevice(x));
    const { store, uuids } = await formatPool(devices.slice(0, 2));
    expect(store.members().filter((m) => m.upToDate)).toHaveLength(2);
    const added = members(devices.slice(2));
    await store.addMembers(added, { metadataBytes: METADATA });
    expect(store.members().filter((m) => m.upToDate)).toHaveLength(3);
    await store.append(Buffer.from('r1'));
    await expectMetadataError(store.addMembers([{ uuid: randomUUID(), device: devices[3]! }], { metadataBytes: METADATA }), 'DUPLICATE_DEVICE');
    await store.removeMember(uuids[0]!);
    expect(store.members()).toHaveLength(4);
    expect(store.members().filter((m) => m.upToDate)).toHaveLength(3);
    expect(decodeSuperblock(d[0]!.live().subarray(0, METADATA_BLOCK)).ok).toBe(false);
    await store.append(Buffer.from('r2'));
    const result = await MetadataStore.import(devices.slice(1));
    expect(text(result)).toEqual({ state: 'S0', records: ['r1', 'r2'] });
    expect(result.members).toHaveLength(4);
    // The removed disk is free for another pool without force.
    await formatPool([devices[0]!]);
  });

  it('moves the checkpoint off replicas whose slot is too small for it', async () => {
    const bigMember = (): SimDevice => new SimDevice(new Disk(2 * MiB));
    const input = members([bigMember(), bigMember()]);
    const store = await MetadataStore.format({ poolUuid: randomUUID(), members: input, slabSize: SLAB, initialState: Buffer.from('S0'), replicas: 2, metadataBytes: 512 * KiB });
    const small = members([new SimDevice(new Disk(MEMBER_BYTES))]);
    await store.addMembers(small, { metadataBytes: METADATA });
    await store.removeMember(input[1]!.uuid); // now the small member must become a replica
    expect(store.members().find((m) => m.uuid === small[0]!.uuid)).toMatchObject({ isReplica: true, upToDate: true });
    const added = members([bigMember()]);
    await store.addMembers(added, { metadataBytes: 512 * KiB });
    expect(store.members().find((m) => m.uuid === added[0]!.uuid)).toMatchObject({ isReplica: false });

    const bigState = Buffer.alloc(GEOMETRY.checkpointSlotBytes, 1); // larger than the small member's slot
    await store.checkpoint(bigState);
    expect(store.members().find((m) => m.uuid === small[0]!.uuid)).toMatchObject({ isReplica: false, upToDate: false });
    expect(store.members().filter((m) => m.upToDate).map((m) => m.uuid).sort()).toEqual([input[0]!.uuid, added[0]!.uuid].sort());
    const error = await expectMetadataError(store.checkpoint(Buffer.alloc(4 * MiB)), 'METADATA_FULL');
    expect(error.message).toMatch(/does not fit any online member/);
    const result = await MetadataStore.import([input[0]!.device, small[0]!.device, added[0]!.device]);
    expect(result.state.equals(bigState)).toBe(true);
    expect(result.members.find((m) => m.uuid === small[0]!.uuid)).toMatchObject({ isReplica: false, status: 'not-replica' });
  });
});

// ------------------------------------------------------------------ divergence

describe('MetadataStore: divergence', () => {
  it('refuses to import two halves of a pool written separately, naming each side', async () => {
    const d = disks(4);
    const devices = d.map((x) => new SimDevice(x));
    const { store, uuids } = await formatPool(devices, { replicas: 4 });
    await store.append(Buffer.from('shared'));
    await store.close();

    const left = await MetadataStore.import([devices[0]!, devices[1]!]);
    await left.store.append(Buffer.from('left'));
    const right = await MetadataStore.import([devices[2]!, devices[3]!]);
    await right.store.append(Buffer.from('right'));

    const error = await expectMetadataError(MetadataStore.import(devices), 'DIVERGED');
    const sides = error.details.sides!.map((s) => [...s.members].sort());
    expect(sides).toHaveLength(2);
    expect(sides).toContainEqual([uuids[0]!, uuids[1]!].sort());
    expect(sides).toContainEqual([uuids[2]!, uuids[3]!].sort());
    expect(error.message).toContain(uuids[0]!);
    // Each half alone still imports.
    expect(text(await MetadataStore.import([devices[0]!])).records).toEqual(['shared', 'left']);
    expect(text(await MetadataStore.import([devices[3]!])).records).toEqual(['shared', 'right']);
  });

  it('spots a fork hidden behind a later checkpoint of the other side', async () => {
    const d = disks(2);
    const devices = d.map((x) => new SimDevice(x));
    const { store, uuids } = await formatPool(devices, { replicas: 2 });
    await store.append(Buffer.from('x1')); // 2, on both
    store.memberFailed(uuids[0]!);
    await store.append(Buffer.from('x2')); // 3, only on B: acknowledged
    await store.append(Buffer.from('x3')); // 4, only on B
    // A alone is imported and written: session start 3, y1 4, checkpoint 5, y2 6.
    const a = await MetadataStore.import([devices[0]!]);
    await a.store.append(Buffer.from('y1'));
    await a.store.checkpoint(Buffer.from('SA'));
    await a.store.append(Buffer.from('y2'));
    // B's generation 4 is behind A's checkpoint, but A's session began at 3, before it.
    const error = await expectMetadataError(MetadataStore.import(devices), 'DIVERGED');
    expect(error.details.sides!.map((side) => side.generation).sort()).toEqual([4, 6]);
  });

  it('tells identical writes in two halves apart (each writing session is its own branch)', async () => {
    const devices = disks(2).map((x) => new SimDevice(x));
    await formatPool(devices, { replicas: 2 });
    const a = await MetadataStore.import([devices[0]!]);
    await a.store.append(Buffer.from('same'));
    const b = await MetadataStore.import([devices[1]!]);
    await b.store.append(Buffer.from('same'));
    await expectMetadataError(MetadataStore.import(devices), 'DIVERGED');
  });

  it('detects divergence after both halves checkpointed, and lets a stale replica through', async () => {
    const d = disks(4);
    const devices = d.map((x) => new SimDevice(x));
    await formatPool(devices, { replicas: 4 });
    const left = await MetadataStore.import([devices[0]!, devices[1]!]);
    await left.store.append(Buffer.from('l1'));
    const staleLeft = d[1]!.live();
    await left.store.checkpoint(Buffer.from('L'));
    await left.store.append(Buffer.from('l2'));
    const right = await MetadataStore.import([devices[2]!, devices[3]!]);
    await right.store.checkpoint(Buffer.from('R'));
    await expectMetadataError(MetadataStore.import(devices), 'DIVERGED');
    // A replica of the left half from before its checkpoint is an ancestor of the left half.
    const [old] = reopen([staleLeft]);
    const result = await MetadataStore.import([old!, devices[0]!]);
    expect(text(result)).toEqual({ state: 'L', records: ['l2'] });
    // And a returning replica from the other half is refused.
    await expectMetadataError(left.store.setMemberOnline(right.members[0]!.uuid, devices[2]!), 'DIVERGED');
  });
});

// ------------------------------------------------------------------ bad input

describe('MetadataStore: bad input changes nothing', () => {
  async function expectUntouched(d: Disk[], action: () => Promise<unknown>, code: string): Promise<MetadataError> {
    const before = d.map((x) => x.live());
    const error = await expectMetadataError(action(), code);
    d.forEach((x, i) => expect(x.live().equals(before[i]!), `disk ${i} changed`).toBe(true));
    return error;
  }

  it('refuses a device that belongs to another pool unless forced', async () => {
    const d = disks(3);
    const devices = d.map((x) => new SimDevice(x));
    await formatPool([devices[0]!]);
    const error = await expectUntouched(d, () => formatPool(devices), 'MEMBER_IN_OTHER_POOL');
    expect(error.message).toMatch(/force/);
    const input = members(devices);
    const forced = await MetadataStore.format({ poolUuid: randomUUID(), members: input, slabSize: SLAB, initialState: Buffer.from('new'), metadataBytes: METADATA, force: true });
    await forced.append(Buffer.from('x'));
    expect(text(await MetadataStore.import(devices))).toEqual({ state: 'new', records: ['x'] });
  });

  it('refuses a device too small, naming the minimum size', async () => {
    const d = [new Disk(MEMBER_BYTES), new Disk(METADATA + 32 * KiB)];
    const error = await expectUntouched(d, () => formatPool(d.map((x) => new SimDevice(x))), 'MEMBER_TOO_SMALL');
    expect(error.message).toContain(String(METADATA + SLAB + METADATA_BLOCK));
  });

  it('refuses the same device twice, two handles of one disk, a repeated UUID, a read-only device', async () => {
    const d = disks(3);
    const devices = d.map((x) => new SimDevice(x));
    await expectUntouched(d, () => formatPool([devices[0]!, devices[1]!, devices[0]!]), 'DUPLICATE_DEVICE');
    const twin = new SimDevice(d[1]!);
    const error = await expectUntouched(d, () => formatPool([devices[0]!, devices[1]!, twin]), 'DUPLICATE_DEVICE');
    expect(error.message).toMatch(/same disk/);
    const uuid = randomUUID();
    await expectUntouched(
      d,
      () => MetadataStore.format({ poolUuid: randomUUID(), members: [{ uuid, device: devices[0]! }, { uuid, device: devices[1]! }], slabSize: SLAB, initialState: Buffer.from(''), metadataBytes: METADATA }),
      'DUPLICATE_MEMBER',
    );
    await expectUntouched(d, () => formatPool([devices[0]!, new SimDevice(d[2]!, new FaultClock(), true)]), 'READ_ONLY');
  });

  it('refuses to import devices of different pools, and devices with no label', async () => {
    const a = disks(1).map((x) => new SimDevice(x));
    const b = disks(1).map((x) => new SimDevice(x));
    await formatPool(a);
    await formatPool(b);
    const error = await expectMetadataError(MetadataStore.import([...a, ...b]), 'MIXED_POOLS');
    expect(error.message).toMatch(/2 different pools/);
    await expectMetadataError(MetadataStore.import([new SimDevice(new Disk(MEMBER_BYTES))]), 'NO_VALID_METADATA');
    const result = await MetadataStore.import([...a, new SimDevice(new Disk(MEMBER_BYTES))]);
    expect(result.unrecognized).toEqual([{ deviceIndex: 1, reason: expect.stringMatching(/no superblock magic/) }]);
  });
});

// ------------------------------------------------------------------ corruption

describe('MetadataStore: corruption', () => {
  /** A pool with history in both slots and the log, and what import must return. */
  async function corruptiblePool() {
    const d = disks(4);
    const devices = d.map((x) => new SimDevice(x));
    const { store, uuids } = await formatPool(devices);
    for (let i = 0; i < 3; i++) await store.append(Buffer.from(`a${i}`));
    await store.checkpoint(Buffer.from('S1'));
    for (let i = 0; i < 3; i++) await store.append(Buffer.from(`b${i}-` + 'z'.repeat(i * 3000)));
    await store.checkpoint(Buffer.from('S2'));
    for (let i = 0; i < 4; i++) await store.append(Buffer.from(`c${i}-` + 'q'.repeat(i * 1500)));
    const expected = text(await MetadataStore.import(devices));
    expect(expected.records).toHaveLength(4);
    const replicas = store.members().filter((m) => m.isReplica).map((m) => uuids.indexOf(m.uuid));
    const images = d.map((x) => x.live());
    return { images, replicas, expected };
  }

  /** Byte ranges worth hitting on a replica. */
  function regions(image: Buffer, g: MemberGeometry): Record<string, [number, number]> {
    const sb = decodeSuperblock(image.subarray(0, METADATA_BLOCK));
    if (!sb.ok || !sb.value.checkpoint) throw new Error('test setup: not a replica');
    const slot = sb.value.checkpoint.slot === 0 ? g.checkpointSlotAOffset : g.checkpointSlotBOffset;
    const head = g.logOffset + sb.value.logHeadOffset;
    return {
      'superblock A': [0, SUPERBLOCK_BYTES],
      'superblock B': [g.superblockBOffset, g.superblockBOffset + SUPERBLOCK_BYTES],
      'current checkpoint': [slot, slot + METADATA_BLOCK + sb.value.checkpoint.stateBytes],
      'log records': [head, head + 3 * METADATA_BLOCK],
    };
  }

  it('flipped bits on one replica: import still returns the right data from the other copies', async () => {
    const { images, replicas, expected } = await corruptiblePool();
    const random = prng(1234);
    for (let trial = 0; trial < 60; trial++) {
      const victim = replicas[trial % replicas.length]!;
      const copy = images.map((b) => Buffer.from(b));
      const names = Object.entries(regions(copy[victim]!, GEOMETRY));
      const [name, [from, to]] = names[trial % names.length]!;
      for (let flips = 1 + Math.floor(random() * 4); flips > 0; flips--) {
        const at = from + Math.floor(random() * (to - from));
        copy[victim]![at]! ^= 1 << Math.floor(random() * 8);
      }
      const result = await MetadataStore.import(reopen(copy));
      expect(text(result), `trial ${trial}: ${name} of member ${victim}`).toEqual(expected);
    }
  });

  it('falls back to superblock B when A is destroyed on every member', async () => {
    const { images, expected } = await corruptiblePool();
    const copy = images.map((b) => Buffer.from(b));
    for (const image of copy) image.fill(0xa5, 0, METADATA_BLOCK);
    expect(text(await MetadataStore.import(reopen(copy)))).toEqual(expected);
  });

  it('gives a clear error, not older data, when the current checkpoint is damaged on every replica', async () => {
    const { images, replicas } = await corruptiblePool();
    const copy = images.map((b) => Buffer.from(b));
    for (const r of replicas) {
      const [from] = regions(copy[r]!, GEOMETRY)['current checkpoint']!;
      copy[r]![from + METADATA_BLOCK]! ^= 0x40; // first state byte
    }
    const error = await expectMetadataError(MetadataStore.import(reopen(copy)), 'CORRUPT');
    expect(error.message).toMatch(/state checksum mismatch/);
  });

  it('gives a clear error when a record in the middle of the only replica log is damaged', async () => {
    const d = disks(1);
    const devices = d.map((x) => new SimDevice(x));
    const { store } = await formatPool(devices);
    for (let i = 0; i < 5; i++) await store.append(Buffer.from(`r${i}`));
    const image = d[0]!.live();
    const sb = decodeSuperblock(image.subarray(0, METADATA_BLOCK));
    if (!sb.ok) throw new Error('setup');
    const second = GEOMETRY.logOffset + sb.value.logHeadOffset + METADATA_BLOCK; // record r1's batch
    image[second + LOG_RECORD_HEADER_BYTES + 1]! ^= 0x01; // inside its payload ("r1")
    await expectMetadataError(MetadataStore.import(reopen([image])), 'CORRUPT');
    const rewound = await MetadataStore.import(reopen([image]), { allowRewind: true });
    expect(text(rewound).records).toEqual(['r0']);
  });

  it('after a rewind past a damaged record, the pool writes on and later imports are clean', async () => {
    const d = disks(1);
    const devices = d.map((x) => new SimDevice(x));
    const { store } = await formatPool(devices);
    for (let i = 0; i < 6; i++) await store.append(Buffer.from(`r${i}`)); // generations 2…7
    const image = d[0]!.live();
    const sb = decodeSuperblock(image.subarray(0, METADATA_BLOCK));
    if (!sb.ok) throw new Error('setup');
    image[GEOMETRY.logOffset + sb.value.logHeadOffset + METADATA_BLOCK + LOG_RECORD_HEADER_BYTES]! ^= 0x01; // r1
    const [device] = reopen([image]);
    const rewound = await MetadataStore.import([device!], { allowRewind: true });
    expect(rewound.members[0]).toMatchObject({ status: 'damaged' });
    await rewound.store.append(Buffer.from('n1')); // generation 4, after the session start
    // r2…r5 (generations 4…7) are still in the ring, but belong to the log's previous incarnation.
    expect(text(await MetadataStore.import([device!]))).toEqual({ state: 'S0', records: ['r0', 'n1'] });
  });

  it('ends the log at a record whose previous-hash does not match, even with good checksums', async () => {
    const d = disks(1);
    const devices = d.map((x) => new SimDevice(x));
    const { store } = await formatPool(devices);
    for (let i = 0; i < 3; i++) await store.append(Buffer.from(`r${i}`)); // generations 2, 3, 4
    const image = d[0]!.live();
    const sb = decodeSuperblock(image.subarray(0, METADATA_BLOCK));
    if (!sb.ok || !sb.value.checkpoint) throw new Error('setup');
    const forged = encodeLogBatch(sb.value.poolUuid, sb.value.checkpoint.generation, sb.value.logSalt, [
      { kind: EventKind.RECORD, generation: 3, prevHash: Buffer.alloc(16, 9), payload: Buffer.from('forged') },
    ]);
    forged.copy(image, GEOMETRY.logOffset + sb.value.logHeadOffset + METADATA_BLOCK); // over r1
    await expectMetadataError(MetadataStore.import(reopen([image])), 'CORRUPT'); // r2 shows r1 existed
    expect(text(await MetadataStore.import(reopen([image]), { allowRewind: true })).records).toEqual(['r0']);
  });

  it('keeps one superblock usable when the first checkpoint after an interrupted one tears superblock A', async () => {
    // 1. A checkpoint is interrupted between superblock A and B: A names slot B, B names slot A.
    const first = new FaultClock({ when: (offset) => offset === GEOMETRY.superblockBOffset, mode: 'drop', cache: 'keep' });
    const d = disks(1);
    const { store } = await formatPool([new SimDevice(d[0]!, first)]);
    first.armed = true;
    await store.checkpoint(Buffer.from('S1'));
    const afterFirst = reopen([d[0]!.crashImage!]);
    const imported = await MetadataStore.import(afterFirst);
    expect(text(imported)).toEqual({ state: 'S1', records: [] });

    // 2. The next checkpoint tears superblock A (100 bytes land) right after writing the idle slot.
    let slotWritten = false;
    const second = new FaultClock({
      when: (offset) => {
        if (offset === GEOMETRY.checkpointSlotAOffset) slotWritten = true;
        return offset === 0 && slotWritten;
      },
      mode: 'torn',
      cache: 'keep',
      tearBytes: 100,
    });
    const [device] = reopen([afterFirst[0]!.disk.live()], second);
    const again = await MetadataStore.import([device!]);
    second.armed = true;
    await again.store.checkpoint(Buffer.from('S2')).catch(() => {});
    expect(second.crashed).toBe(true);
    // Superblock B must have been made to name slot B (S1) before slot A was overwritten.
    expect(text(await MetadataStore.import(reopen([device!.disk.crashImage!])))).toEqual({ state: 'S1', records: [] });
  });

  it('gives a clear error when no superblock is left on any replica', async () => {
    const { images, replicas } = await corruptiblePool();
    const copy = images.map((b) => Buffer.from(b));
    for (const r of replicas) {
      copy[r]!.fill(0, 0, METADATA_BLOCK);
      copy[r]!.fill(0, GEOMETRY.superblockBOffset, GEOMETRY.superblockBOffset + METADATA_BLOCK);
    }
    await expectMetadataError(MetadataStore.import(reopen(copy)), 'NO_VALID_METADATA');
  });
});

// ------------------------------------------------------------------ log horizon

/** A device that remembers every read, and reads in place (readInto) like file and NBD devices. */
class ReadRecorder implements BlockDevice {
  readonly reads: Array<[number, number]> = [];
  constructor(readonly inner: BlockDevice) {}
  get size(): number {
    return this.inner.size;
  }
  get capabilities(): BlockDeviceCapabilities {
    return this.inner.capabilities;
  }
  read(offset: number, length: number): Promise<Buffer> {
    this.reads.push([offset, length]);
    return this.inner.read(offset, length);
  }
  async readInto(offset: number, target: Buffer): Promise<void> {
    this.reads.push([offset, target.length]);
    (await this.inner.read(offset, target.length)).copy(target);
  }
  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    return this.inner.write(offset, data, options);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  trim(): Promise<void> {
    throw new Error('not used');
  }
  writeZeroes(): Promise<void> {
    throw new Error('not used');
  }
  async close(): Promise<void> {}
  /** Bytes read from [from, to), and forgets the reads. */
  takeBytesIn(from: number, to: number): number {
    let n = 0;
    for (const [offset, length] of this.reads) n += Math.max(0, Math.min(to, offset + length) - Math.max(from, offset));
    this.reads.length = 0;
    return n;
  }
}

function superblockOf(image: Buffer, offset = 0): Superblock {
  const sb = decodeSuperblock(image.subarray(offset, offset + METADATA_BLOCK));
  if (!sb.ok) throw new Error(`test setup: ${sb.reason}`);
  return sb.value;
}

/** Rewrites both superblock copies of a replica image as `change` says. */
function relabel(image: Buffer, change: (sb: Superblock) => Superblock): void {
  const block = encodeSuperblock(change(superblockOf(image)));
  block.copy(image, 0);
  block.copy(image, GEOMETRY.superblockBOffset);
}

describe('MetadataStore: log horizon', () => {
  it('reads the live log plus at most one horizon step, not the whole ring, and raises the horizon as the log grows', async () => {
    // 128 GiB members: a 16 MiB log ring, and a 4 MiB horizon step.
    const devices = [0, 1, 2].map(() => new ReadRecorder(new MemoryBlockDevice(128 * 1024 * MiB)));
    const input = members(devices);
    const store = await MetadataStore.format({ poolUuid: randomUUID(), members: input, slabSize: 256 * MiB, initialState: Buffer.from('S0') });
    const g = store.members()[0]!.geometry;
    expect(g.logBytes).toBeGreaterThan(10 * MiB);
    const logRead = (): number[] => devices.map((d) => d.takeBytesIn(g.logOffset, g.logOffset + g.logBytes));
    const records = ['r0'];
    await store.append(Buffer.from('r0'));
    logRead();
    expect(text(await MetadataStore.import(devices)).records).toEqual(records);
    for (const n of logRead()) expect(n).toBeLessThanOrEqual(4 * MiB);

    // ~5 MiB of records: past the first horizon, so step 0 raised it.
    for (let i = 1; i <= 40; i++) {
      const body = `r${i}:` + String.fromCharCode(97 + (i % 26)).repeat(128 * 1024);
      await store.append(Buffer.from(body));
      records.push(body);
    }
    const used = store.logFillRatio * g.logBytes;
    expect(used).toBeGreaterThan(5 * MiB);
    for (const d of devices) {
      const a = superblockOf(await d.read(0, METADATA_BLOCK));
      const b = superblockOf(await d.read(g.superblockBOffset, METADATA_BLOCK));
      expect(a.logHorizonBytes).toBeGreaterThan(used);
      expect(a.logHorizonBytes).toBeLessThanOrEqual(used + 4 * MiB + METADATA_BLOCK);
      expect(b).toEqual(a);
    }
    logRead();
    const result = await MetadataStore.import(devices);
    expect(text(result).records).toEqual(records);
    for (const n of logRead()) {
      expect(n).toBeGreaterThanOrEqual(used);
      expect(n).toBeLessThanOrEqual(used + 4 * MiB + METADATA_BLOCK);
      expect(n).toBeLessThan(g.logBytes);
    }
  });

  it('finds evidence of damage anywhere up to the horizon, also past the first step', async () => {
    const d = disks(1);
    const { store } = await formatPool([new SimDevice(d[0]!)]);
    // One block each: the 28 KiB ring's horizon goes 12 KiB, then 24 KiB at the third record.
    for (let i = 0; i < 5; i++) await store.append(Buffer.from(`r${i}`));
    const image = d[0]!.live();
    const sb = superblockOf(image);
    expect(sb.logHorizonBytes).toBe(24 * KiB);
    expect(sb.logHorizonBytes).toBeLessThan(GEOMETRY.logBytes);
    // r1…r3 destroyed: only r4, past the first step, shows that they existed.
    const log = GEOMETRY.logOffset + sb.logHeadOffset;
    image.fill(0xee, log + METADATA_BLOCK, log + 4 * METADATA_BLOCK);
    const error = await expectMetadataError(MetadataStore.import(reopen([image])), 'CORRUPT');
    expect(error.message).toMatch(/generation 6 existed/);
    expect(text(await MetadataStore.import(reopen([image]), { allowRewind: true })).records).toEqual(['r0']);
  });

  it('reads the whole ring when the chain runs past the horizon (a writer from before the field)', async () => {
    const d = disks(1);
    const { store } = await formatPool([new SimDevice(d[0]!)]);
    for (let i = 0; i < 5; i++) await store.append(Buffer.from(`r${i}`));
    const image = d[0]!.live();
    relabel(image, (sb) => ({ ...sb, logHorizonBytes: METADATA_BLOCK }));
    expect(text(await MetadataStore.import(reopen([image])))).toEqual({ state: 'S0', records: ['r0', 'r1', 'r2', 'r3', 'r4'] });
  });

  it('reads the whole ring when a record of this log sits at the ring start beyond the horizon', async () => {
    const d = disks(1);
    const { store } = await formatPool([new SimDevice(d[0]!)]);
    for (let i = 0; i < 6; i++) await store.append(Buffer.from(`f${i}`));
    await store.checkpoint(Buffer.from('S1')); // the log goes on from the ring's last block
    for (let i = 0; i < 3; i++) await store.append(Buffer.from(`w${i}`)); // w1 and w2 wrap to the start
    const image = d[0]!.live();
    expect(superblockOf(image).logHeadOffset).toBe(GEOMETRY.logBytes - METADATA_BLOCK);
    // A horizon ending at the ring's end: the wrapped records lie beyond it.
    relabel(image, (sb) => ({ ...sb, logHorizonBytes: METADATA_BLOCK }));
    expect(text(await MetadataStore.import(reopen([image])))).toEqual({ state: 'S1', records: ['w0', 'w1', 'w2'] });
  });

  it('imports a label without the horizon field (232-byte header) by reading the whole ring, and writes on', async () => {
    const d = disks(1);
    const { store } = await formatPool([new SimDevice(d[0]!)]);
    for (let i = 0; i < 5; i++) await store.append(Buffer.from(`r${i}`));
    const image = d[0]!.live();
    for (const at of [0, GEOMETRY.superblockBOffset]) {
      image.writeUInt32LE(SUPERBLOCK_V1_BYTES, at + 12);
      image.fill(0, at + SUPERBLOCK_V1_BYTES, at + METADATA_BLOCK);
      image.writeUInt32LE(0, at + 16);
      image.writeUInt32LE(crc32c(image.subarray(at, at + SUPERBLOCK_V1_BYTES)), at + 16);
      expect(superblockOf(image, at).logHorizonBytes).toBeUndefined();
    }
    const [device] = reopen([image]);
    const imported = await MetadataStore.import([device!]);
    expect(text(imported).records).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    await imported.store.append(Buffer.from('n1'));
    await imported.store.checkpoint(Buffer.from('S1'));
    await imported.store.append(Buffer.from('n2'));
    expect(superblockOf(device!.disk.live()).logHorizonBytes).toBeGreaterThan(0);
    expect(text(await MetadataStore.import(reopen([device!.disk.live()])))).toEqual({ state: 'S1', records: ['n2'] });
  });
});

// ------------------------------------------------------------------ crash campaign

type Op = { kind: 'append' | 'checkpoint'; data: string };
const a = (data: string): Op => ({ kind: 'append', data });
const c = (data: string): Op => ({ kind: 'checkpoint', data });
/** Groups run one after another; the ops of a group are issued together. */
const PHASE_1: Op[][] = [[a('a1')], [a('a2'), a('a3' + 'x'.repeat(5000)), a('a4')], [c('S1')], [a('a5')], [c('S2' + 's'.repeat(6000))], [a('a6'), a('a7')]];
const PHASE_2: Op[][] = [[a('b1')], [a('b2'), a('b3')], [c('S3')], [a('b4' + 'y'.repeat(4100))], [a('b5')]];

/** State and records after the first k issued ops. */
function viewAfter(ops: readonly Op[], k: number): { state: string; records: string[] } {
  let state = 'S0';
  let records: string[] = [];
  for (const op of ops.slice(0, k)) {
    if (op.kind === 'checkpoint') {
      state = op.data;
      records = [];
    } else records.push(op.data);
  }
  return { state, records };
}

interface ScenarioOutcome {
  images: Buffer[];
  issued: Op[];
  ackedBeforeCrash: number;
  writes: number;
  failed: string[];
  uuids: string[];
}

/** Format, then run the phases (with an import between them, as after a restart) under `clock`. */
async function runScenario(clock: FaultClock): Promise<ScenarioOutcome> {
  const d = disks(4);
  const devices = d.map((x) => new SimDevice(x, clock));
  const failed: string[] = [];
  const input = members(devices);
  let store = await MetadataStore.format({
    poolUuid: randomUUID(),
    members: input,
    slabSize: SLAB,
    initialState: Buffer.from('S0'),
    metadataBytes: METADATA,
    onMemberFailed: (uuid) => failed.push(uuid),
  });
  clock.armed = true;
  const issued: Op[] = [];
  let ackedBeforeCrash = 0;
  let frozen = false;
  clock.onCrash = () => {
    // Power failed: acknowledgements from now on never reach anybody.
    frozen = true;
  };
  const runPhase = async (phase: Op[][]): Promise<void> => {
    for (const group of phase) {
      if (clock.crashed) return;
      const calls = group.map((op) => {
        const index = issued.push(op);
        const p = op.kind === 'append' ? store.append(Buffer.from(op.data)) : store.checkpoint(Buffer.from(op.data));
        return p.then(() => {
          if (!frozen) ackedBeforeCrash = Math.max(ackedBeforeCrash, index);
        });
      });
      await Promise.allSettled(calls);
    }
  };
  await runPhase(PHASE_1);
  if (!clock.crashed) {
    const restarted = await MetadataStore.import(devices, { onMemberFailed: (uuid) => failed.push(uuid) });
    expect(text(restarted)).toEqual(viewAfter(issued, issued.length));
    store = restarted.store;
    await runPhase(PHASE_2);
  }
  const images = d.map((x) => (clock.crashed && x.crashImage ? x.crashImage : x.live()));
  return { images, issued, ackedBeforeCrash, writes: clock.writes, failed, uuids: input.map((m) => m.uuid) };
}

/** Import must give the view after some k ≥ acknowledged ops; then the pool must keep working. */
async function checkRecovery(outcome: ScenarioOutcome, label: string): Promise<void> {
  const devices = reopen(outcome.images);
  const result = await MetadataStore.import(devices);
  const got = text(result);
  const matches: number[] = [];
  for (let k = outcome.ackedBeforeCrash; k <= outcome.issued.length; k++) {
    const v = viewAfter(outcome.issued, k);
    if (v.state === got.state && JSON.stringify(v.records) === JSON.stringify(got.records)) matches.push(k);
  }
  expect(matches.length, `${label}: got ${JSON.stringify(got).slice(0, 200)}, acknowledged ${outcome.ackedBeforeCrash}`).toBeGreaterThan(0);

  // Keep going on the recovered pool: repairs (stale replicas, torn tails,
  // disagreeing superblocks) happen here, and must leave a sound pool.
  await result.store.append(Buffer.from('z1'));
  await result.store.checkpoint(Buffer.from('SZ'));
  await result.store.append(Buffer.from('z2'));
  const again = await MetadataStore.import(reopen(devices.map((x) => x.disk.live())));
  expect(text(again), label).toEqual({ state: 'SZ', records: ['z2'] });
  expect(again.members.filter((m) => m.status === 'current').length, label).toBeGreaterThanOrEqual(3);
}

/**
 * Hundreds of scenarios each (9 ways × every write, ~84 writes with step 0's
 * superblock pairs): ~15 s on an idle machine, more on a busy one.
 */
const CAMPAIGN_TIMEOUT_MS = 120_000;

describe('MetadataStore: crash campaign (every write, every way)', () => {
  it('survives power loss at every write: disconnect, silent drop, torn write; cache kept, lost or reordered', async () => {
    const clean = await runScenario(new FaultClock());
    expect(clean.failed).toEqual([]);
    const total = clean.writes;
    expect(total).toBeGreaterThan(40);
    let runs = 0;
    for (const mode of ['disconnect', 'drop', 'torn'] as const) {
      for (const cache of ['keep', 'lose', 'reorder'] as const) {
        for (let at = 1; at <= total; at++) {
          const outcome = await runScenario(new FaultClock({ at, mode, cache }));
          await checkRecovery(outcome, `${mode}/${cache} at write ${at}`);
          runs++;
        }
      }
    }
    expect(runs).toBe(9 * total);
  }, CAMPAIGN_TIMEOUT_MS);

  it('keeps every acknowledged write when one member dies at any write (torn or not)', async () => {
    const total = (await runScenario(new FaultClock())).writes;
    for (const mode of ['disconnect', 'torn'] as const) {
      for (let at = 1; at <= total; at++) {
        const clock = new FaultClock({ at, mode, cache: at % 2 === 0 ? 'keep' : 'lose', only: 'one-device' });
        const outcome = await runScenario(clock);
        const label = `${mode} one device at write ${at}`;
        // Nothing was lost: every op resolved, and import sees all of them.
        expect(outcome.ackedBeforeCrash, label).toBe(outcome.issued.length);
        expect(outcome.issued.length, label).toBe(PHASE_1.flat().length + PHASE_2.flat().length);
        expect(outcome.failed, label).toHaveLength(1);
        const all = await MetadataStore.import(reopen(outcome.images));
        expect(text(all), label).toEqual(viewAfter(outcome.issued, outcome.issued.length));
        const survivors = outcome.images.filter((_, i) => outcome.uuids[i] !== outcome.failed[0]);
        expect(text(await MetadataStore.import(reopen(survivors))), label).toEqual(viewAfter(outcome.issued, outcome.issued.length));
      }
    }
  }, CAMPAIGN_TIMEOUT_MS);
});
