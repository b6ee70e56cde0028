/**
 * The pool metadata store: an append-only, checksummed, hash-chained log of
 * records with periodic checkpoints, replicated on several members, with
 * both superblocks on every member (on-disk-format.ts draws the member).
 *
 * What it guarantees
 * - append(record) resolves once the record is durable (written and flushed)
 *   on every online, up-to-date metadata replica; checkpoint(state) once the
 *   state is durable there and the superblocks point at it.
 * - Import after any crash finds a history that is a prefix of what was
 *   written, containing at least everything acknowledged, or refuses with a
 *   clear error. It never returns a history that no writer produced, and
 *   never picks one of two diverged histories.
 *
 * The history. Every event has a generation (1, 2, 3, … with no gaps) and a
 * hash = H(previous hash, generation, kind, payload) (on-disk-format.ts):
 * pool records (the pool layer's opaque payloads), session starts (written
 * first by every writing session: a random id, so two writers never produce
 * the same hash even with the same records) and checkpoints (the state
 * itself is the payload, so the checkpoint is an event with its own
 * generation). Format creates generation 1, a checkpoint of the initial
 * state, which also counts as the first session start. A replica holds one
 * checkpoint (in the slot its superblocks name) and the records after it in
 * its log ring. Records carry that checkpoint's generation (their epoch) and
 * the log's salt, a random number in the superblock that is new each time
 * the replica's log restarts (every checkpoint written to it). The
 * superblock also bounds where that log's records can be: its horizon, the
 * bytes of ring (from the head, counted as the writer counts its log use)
 * that the writer may fill before it raises the horizon in both superblocks.
 *
 * Write order (one operation at a time; each step on all target members in
 * parallel, each member's steps in this order):
 *
 *   append:      0. only when the batch would reach the horizon: superblock
 *                   A with a horizon a step past the batch, flush, superblock
 *                   B, flush (same slot, generation and salt: only the
 *                   horizon changes; a step is up to 4 MiB, so this is rare)
 *                1. write the batch of records at the log tail (whole 4 KiB
 *                   blocks, never rewriting an acknowledged record)
 *                2. flush                                  → acknowledged
 *   checkpoint:  1. write header + state into the idle slot
 *                2. flush
 *                3. write superblock A (new slot, new generation, log head =
 *                   where the next record will go)
 *                4. flush
 *                5. write superblock B (same bytes)
 *                6. flush                                  → acknowledged
 *                7. non-replica members: superblock A, flush, B, flush
 *
 * Why it is safe: until 3 reaches the disk, both superblocks name the old
 * slot, whose contents and log the writer has not touched. Between 3 and 5,
 * A names the new slot (complete and flushed), B the old one (still intact
 * with its log: records after the old checkpoint are overwritten only by
 * appends, which come after 6). If A is torn, B is whole, and the other way
 * round. The idle slot is never named by a valid superblock: when import
 * found the two copies disagreeing, the writer first rewrites the stale copy
 * from the good one (flush) before it overwrites any slot. A log record is
 * accepted only when its generation follows, its salt, epoch and pool match,
 * its previous-hash matches and its CRCs hold, so a torn batch, records of an
 * older lap of the ring, of an earlier incarnation of the log or of another
 * pool are simply the end of the log. Step 0 keeps "no record of this log
 * lies beyond the horizon of a valid superblock naming it": records past the
 * old horizon are written only once both copies carry the new one, and a
 * torn copy is invalid (the other, old horizon, still bounds what exists).
 *
 * Import takes, on every replica, the superblock copy with the highest
 * generation whose checkpoint verifies (header CRC, state CRC, hash), reads
 * the log from its head up to its horizon (the whole ring if the label has
 * none), follows the hash chain through it, and then compares the replicas'
 * histories:
 * - equal, or one an ancestor of the other (a replica that missed writes
 *   because it was offline): the newest is taken; the stale replica is
 *   brought up to date at the first write of the new session (not at import,
 *   which only reads: importing to look changes nothing).
 * - diverged (each has events the other lacks: a pool split in two and both
 *   halves written): MetadataError('DIVERGED') naming the members on each side.
 * Ancestry: R is an ancestor of N if N's hash at R's newest generation is R's
 * hash there. N knows hashes at its checkpoint, its log records and the
 * starts of its last 128 sessions (kept in every checkpoint); when R's newest
 * generation lies further back, R's last session start decides: if N has the
 * same start (same hash) and no later session began at or before R's newest
 * generation, R's events there were written by that same session writer (one
 * writer never writes two different events with one generation), so R is an
 * ancestor; otherwise R diverged (or cannot be proven not to: refused too).
 * Evidence of lost writes is refused as well rather than silently rewound: a
 * superblock naming a newer checkpoint that fails to verify, records of the
 * current log (same salt) beyond a break in the chain written in a later
 * batch than the break (so the batch with the break had completed; all of
 * that log lies within the horizon, so reading up to it finds them), or a
 * non-replica member whose superblock saw a newer generation than any
 * replica given (MetadataError 'CORRUPT' / 'NEWER_METADATA_MISSING';
 * `allowRewind` accepts the older state, like `zpool import -F`; the first
 * write then rewrites the replicas that showed the evidence whole, with a
 * new salt, and relabels such members, so the alarm does not come back). A
 * torn last batch is not evidence: it was never acknowledged. The one loss
 * import cannot see: damage to the last batch of a pool's only up-to-date
 * replica looks like a torn, unacknowledged batch (as for any single-copy
 * journal); hence three replicas by default.
 *
 * Replicas: `replicas` (default 3) members hold checkpoint + log, chosen by
 * largest slot. A write that fails on a member (any error) takes it offline
 * for the store (onMemberFailed tells the pool); when fewer up-to-date
 * replicas than the target remain online, other online members are promoted
 * (written the current checkpoint and log) before the operation resolves.
 * A member that comes back (setMemberOnline) is re-read and checked to be an
 * ancestor before it is brought up to date; a diverged one is refused.
 *
 * Concurrency: operations are queued and run one at a time in call order.
 * Appends waiting together are written as one batch (group commit): one
 * write and one flush per replica for all of them.
 *
 * Costs: an append writes at least one 4 KiB block per replica (plus, once
 * per horizon step of log, two superblocks); a checkpoint writes the whole
 * state per replica; import reads each replica's checkpoint and its log up to
 * the horizon: what was appended since the checkpoint plus at most one step
 * (4 MiB), not the whole ring (up to ~96 MiB on the largest members). A
 * chain found running past the horizon (a writer that predates the horizon
 * appended after a newer one checkpointed) makes import read the whole ring
 * so that no acknowledged record is dropped; only the damage scan then
 * misses records that such an older writer put beyond the horizon.
 */
import { randomBytes } from 'node:crypto';
import type { BlockDevice } from '../nbd/block-device.js';
import { crc32c } from './metadata-crc.js';
import {
  CHECKPOINT_HEADER_BYTES,
  EventKind,
  GeometryError,
  LOG_RECORD_ALIGNMENT,
  LOG_RECORD_MAGIC,
  MAX_SESSIONS_REMEMBERED,
  METADATA_BLOCK,
  alignDown,
  alignUp,
  checkpointCapacity,
  decodeCheckpointHeader,
  decodeLogRecordHeader,
  decodeProbe,
  decodeSuperblock,
  encodeCheckpointHeader,
  encodeLogBatch,
  encodeProbe,
  encodeSuperblock,
  genesisHash,
  historyHash,
  isUuid,
  logBatchBytes,
  memberGeometry,
  newLogSalt,
  type LogRecordKind,
  type MemberGeometry,
  type SessionStart,
  type Superblock,
} from './on-disk-format.js';

/** Metadata replicas a pool keeps unless told otherwise: survives two member losses. */
export const DEFAULT_REPLICAS = 3;
/** Largest batch of queued appends written at once; bigger single records still go alone. */
const MAX_BATCH_BYTES = 1024 * 1024;
/** Largest single read or write the store issues: bounded request sizes for every transport. */
const IO_CHUNK_BYTES = 8 * 1024 * 1024;
/**
 * How far past the log's use a raised horizon reaches: import reads at most
 * this much beyond the live log, and step 0 of an append comes once per this
 * much log (≥ 1,000 appends at 4 KiB each). 4 MiB reads in milliseconds;
 * smaller logs use half the ring, so that every log, the tests' small ones
 * included, goes through step 0 a few times per lap.
 */
const LOG_HORIZON_STEP_MAX = 4 * 1024 * 1024;
const SESSION_PAYLOAD_BYTES = 24;

export type MetadataErrorCode =
  | 'INVALID_ARGUMENT'
  | 'MEMBER_IN_OTHER_POOL'
  | 'MEMBER_TOO_SMALL'
  | 'DUPLICATE_DEVICE'
  | 'DUPLICATE_MEMBER'
  | 'READ_ONLY'
  | 'MIXED_POOLS'
  | 'NO_VALID_METADATA'
  | 'CORRUPT'
  | 'NEWER_METADATA_MISSING'
  | 'DIVERGED'
  | 'WRONG_MEMBER'
  | 'UNKNOWN_MEMBER'
  | 'LOG_FULL'
  | 'METADATA_FULL'
  | 'NO_REPLICAS'
  | 'STORE_FAILED'
  | 'IO_ERROR'
  | 'CLOSED';

/** One side of a divergence: members whose histories agree, and how far theirs goes. */
export interface DivergedSide {
  readonly members: readonly string[];
  readonly generation: number;
}

export class MetadataError extends Error {
  constructor(
    readonly code: MetadataErrorCode,
    message: string,
    readonly details: { readonly sides?: readonly DivergedSide[]; readonly members?: readonly string[] } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MetadataError';
  }
}

export interface StoreMemberInput {
  readonly uuid: string;
  readonly device: BlockDevice;
}

export interface FormatOptions {
  readonly poolUuid: string;
  readonly members: readonly StoreMemberInput[];
  readonly slabSize: number;
  readonly initialState: Buffer;
  /** Metadata replicas to keep (default 3; all members if fewer). */
  readonly replicas?: number;
  /** Overwrite devices that carry a label of another pool. */
  readonly force?: boolean;
  /** Metadata reservation per member instead of the size-based default (tests, tuning). */
  readonly metadataBytes?: number;
  readonly onMemberFailed?: MemberFailedListener;
}

export interface ImportOptions {
  /** Accept an older state when newer metadata is known to have existed but cannot be read. */
  readonly allowRewind?: boolean;
  readonly onMemberFailed?: MemberFailedListener;
}

export interface AddMembersOptions {
  readonly force?: boolean;
  readonly metadataBytes?: number;
}

export type MemberFailedListener = (uuid: string, error: unknown) => void;

export type ImportedMemberStatus = 'current' | 'stale' | 'damaged' | 'not-replica';

export interface ImportedMember {
  readonly uuid: string;
  /** Index of its device in the import call. */
  readonly deviceIndex: number;
  /** Newest generation it holds (replicas) or its label was written at (others). */
  readonly generation: number;
  readonly isReplica: boolean;
  readonly status: ImportedMemberStatus;
  readonly geometry: MemberGeometry;
}

export interface ImportResult {
  readonly store: MetadataStore;
  /** The newest checkpoint's state. */
  readonly state: Buffer;
  /** Pool records after that checkpoint, in order. */
  readonly records: Buffer[];
  readonly generation: number;
  readonly members: ImportedMember[];
  /** Devices without a valid label, with the reason. */
  readonly unrecognized: Array<{ readonly deviceIndex: number; readonly reason: string }>;
}

export interface MemberStatus {
  readonly uuid: string;
  readonly online: boolean;
  readonly isReplica: boolean;
  /** A replica holding the whole current history. */
  readonly upToDate: boolean;
  readonly geometry: MemberGeometry;
}

// ------------------------------------------------------------------ internal shapes

interface HistoryEvent {
  readonly generation: number;
  readonly kind: LogRecordKind;
  readonly payload: Buffer;
  readonly prevHash: Buffer;
  readonly hash: Buffer;
}

interface CheckpointImage {
  readonly generation: number;
  readonly prevHash: Buffer;
  readonly hash: Buffer;
  readonly state: Buffer;
  readonly stateCrc32c: number;
  /** The table written with it: the last sessions started at or before it. */
  readonly sessions: readonly SessionStart[];
}

/** What the store knows about one member. */
interface StoreMember {
  readonly uuid: string;
  device: BlockDevice | undefined;
  geometry: MemberGeometry;
  isReplica: boolean;
  /** A replica whose durable history is the store's: it receives appends. */
  inSync: boolean;
  /** The superblock both copies should hold; undefined when neither copy is valid. */
  label: Superblock | undefined;
  /** Both copies are valid and identical. */
  sbAgree: boolean;
  /** Slot holding the replica's checkpoint (the one its label names). */
  slot: 0 | 1 | undefined;
  checkpointGeneration: number;
  checkpointHash: Buffer | undefined;
  tipGeneration: number;
  /** Log ring positions, relative to the log; `logUsed` counts skipped ends too. */
  logHead: number;
  logTail: number;
  logUsed: number;
  logSalt: number;
  /** Log use its durable labels allow (the horizon; logBytes when they name none); logUsed stays below it. */
  logHorizon: number;
  /** Rewrite its checkpoint and log whole (after a rewind left records beyond its history). */
  rewrite: boolean;
  /** Rewrite its label at the next write (after a rewind, it names a generation that was abandoned). */
  relabel: boolean;
}

type QueueItem =
  | { readonly kind: 'append'; readonly payload: Buffer; resolve(generation: number): void; reject(error: unknown): void }
  | { readonly kind: 'task'; run(): Promise<unknown>; resolve(value: unknown): void; reject(error: unknown): void };

/** A replica's history as found on disk. */
interface LoadedReplica {
  readonly label: Superblock;
  readonly sbAgree: boolean;
  readonly checkpoint: CheckpointImage;
  readonly events: HistoryEvent[];
  readonly tipGeneration: number;
  readonly tipHash: Buffer;
  readonly sessions: SessionStart[];
  readonly logHead: number;
  readonly logTail: number;
  readonly logUsed: number;
  readonly logHorizon: number;
  /** Highest generation shown to have existed on this replica (≥ tip). */
  readonly evidenceGeneration: number;
  readonly evidence: string | undefined;
}

interface DamagedReplica {
  readonly damaged: string;
  readonly evidenceGeneration: number;
}

interface LabelRead {
  readonly best: Superblock | undefined;
  /** Valid copies, newest first. */
  readonly valid: Superblock[];
  readonly sbAgree: boolean;
  /** Block 0 as read, to restore it after a format probe. */
  readonly blockZero: Buffer | undefined;
  readonly reason: string;
}

/** What one history knows, for ancestry checks. */
interface HistoryView {
  readonly tipGeneration: number;
  readonly tipHash: Buffer;
  readonly known: ReadonlyMap<number, string>;
  readonly sessions: readonly SessionStart[];
}

type Ancestry = 'ancestor' | 'diverged' | 'unknown';

// ------------------------------------------------------------------ the store

export class MetadataStore {
  readonly poolUuid: string;
  readonly slabSize: number;
  private replicaTargetValue: number;
  private readonly memberMap = new Map<string, StoreMember>();
  private checkpointImage: CheckpointImage;
  private tail: HistoryEvent[];
  private sessions: SessionStart[];
  private generationValue: number;
  private tipHash: Buffer;
  private sessionStarted: boolean;
  private readonly onMemberFailed: MemberFailedListener | undefined;
  private readonly queue: QueueItem[] = [];
  private pumping = false;
  private failure: MetadataError | undefined;
  private closed = false;

  private constructor(init: {
    poolUuid: string;
    slabSize: number;
    replicaTarget: number;
    members: StoreMember[];
    checkpoint: CheckpointImage;
    tail: HistoryEvent[];
    sessions: SessionStart[];
    sessionStarted: boolean;
    onMemberFailed: MemberFailedListener | undefined;
  }) {
    this.poolUuid = init.poolUuid;
    this.slabSize = init.slabSize;
    this.replicaTargetValue = init.replicaTarget;
    for (const m of init.members) this.memberMap.set(m.uuid, m);
    this.checkpointImage = init.checkpoint;
    this.tail = init.tail;
    this.sessions = init.sessions;
    const last = init.tail[init.tail.length - 1];
    this.generationValue = last ? last.generation : init.checkpoint.generation;
    this.tipHash = last ? last.hash : init.checkpoint.hash;
    this.sessionStarted = init.sessionStarted;
    this.onMemberFailed = init.onMemberFailed;
  }

  // ---------------------------------------------------------------- format

  /**
   * Labels `members` as a new pool and writes the initial checkpoint on the
   * replicas. Refuses, before writing anything: labelled devices (unless
   * `force`), devices too small or read-only, the same device or UUID twice.
   * Two handles of one disk (two NBD connections to it) are found by a probe
   * written to block 0 and restored at once.
   */
  static async format(options: FormatOptions): Promise<MetadataStore> {
    const { poolUuid, slabSize, initialState } = options;
    if (!isUuid(poolUuid)) throw new MetadataError('INVALID_ARGUMENT', `pool UUID ${JSON.stringify(poolUuid)} is not a UUID`);
    if (!Buffer.isBuffer(initialState)) throw new MetadataError('INVALID_ARGUMENT', 'initial state must be a Buffer');
    if (options.members.length === 0) throw new MetadataError('INVALID_ARGUMENT', 'a pool needs at least one member');
    const replicaTarget = options.replicas ?? DEFAULT_REPLICAS;
    if (!Number.isSafeInteger(replicaTarget) || replicaTarget < 1) {
      throw new MetadataError('INVALID_ARGUMENT', `replica count ${replicaTarget} must be a positive integer`);
    }
    const prepared = await prepareNewMembers(options.members, slabSize, {
      poolUuid,
      force: options.force ?? false,
      metadataBytes: options.metadataBytes,
      existing: [],
    });
    const replicas = [...prepared]
      .sort((a, b) => b.geometry.checkpointSlotBytes - a.geometry.checkpointSlotBytes)
      .slice(0, replicaTarget);
    for (const r of replicas) {
      if (initialState.length > checkpointCapacity(r.geometry)) {
        throw new MetadataError(
          'METADATA_FULL',
          `initial state of ${initialState.length} bytes does not fit member ${r.uuid}'s checkpoint slot of ${checkpointCapacity(r.geometry)} bytes`,
        );
      }
    }
    const state = Buffer.from(initialState);
    const prevHash = genesisHash(poolUuid);
    const hash = historyHash(prevHash, 1, EventKind.CHECKPOINT, state);
    const sessions = [{ generation: 1, hash }];
    const checkpoint: CheckpointImage = { generation: 1, prevHash, hash, state, stateCrc32c: crc32c(state), sessions };
    const members = prepared.map((p) => ({ ...blankMember(p.uuid, p.device, p.geometry), isReplica: replicas.includes(p) }));
    const store = new MetadataStore({
      poolUuid,
      slabSize,
      replicaTarget,
      members,
      checkpoint,
      tail: [],
      sessions: [...sessions],
      sessionStarted: true,
      onMemberFailed: options.onMemberFailed,
    });
    // All replicas' slots first, then every label: a crash in between leaves
    // devices without a valid label, which a later format accepts.
    await Promise.all(
      members.filter((m) => m.isReplica).map((m) => store.writeSlot(m.device!, m.geometry, 0, checkpoint).catch(ioError(m.uuid))),
    );
    await Promise.all(
      members.map(async (m) => {
        const logSalt = m.isReplica ? newLogSalt() : 0;
        const logHorizon = horizonStep(m.geometry);
        const label = store.labelFor(m, m.isReplica ? { slot: 0, checkpoint, logHead: 0, logSalt, logHorizon } : undefined);
        await writeLabel(m.device!, m.geometry, label).catch(ioError(m.uuid));
        m.label = label;
        m.sbAgree = true;
        if (m.isReplica) {
          Object.assign(m, { inSync: true, slot: 0, checkpointGeneration: 1, checkpointHash: hash, tipGeneration: 1, logSalt, logHorizon });
        }
      }),
    );
    return store;
  }

  // ---------------------------------------------------------------- import

  /**
   * Reads every device's labels and the replicas' histories, and returns the
   * newest consistent state with the records after it. Reads only: stale
   * replicas and disagreeing superblocks are repaired at the first write.
   */
  static async import(devices: readonly BlockDevice[], options: ImportOptions = {}): Promise<ImportResult> {
    if (devices.length === 0) throw new MetadataError('NO_VALID_METADATA', 'no devices to import from');
    if (new Set(devices).size !== devices.length) throw new MetadataError('DUPLICATE_DEVICE', 'the same device was given twice');
    const labels = await Promise.all(devices.map((d) => readLabels(d)));
    const unrecognized: Array<{ deviceIndex: number; reason: string }> = [];
    const found: Array<{ index: number; device: BlockDevice; labels: LabelRead; label: Superblock }> = [];
    labels.forEach((l, index) => {
      if (l.best) found.push({ index, device: devices[index]!, labels: l, label: l.best });
      else unrecognized.push({ deviceIndex: index, reason: l.reason });
    });
    if (found.length === 0) {
      throw new MetadataError(
        'NO_VALID_METADATA',
        `no Spindle label on any of the ${devices.length} device(s): ${unrecognized.map((u) => `#${u.deviceIndex}: ${u.reason}`).join('; ')}`,
      );
    }
    const pools = new Map<string, string[]>();
    for (const f of found) pools.set(f.label.poolUuid, [...(pools.get(f.label.poolUuid) ?? []), f.label.memberUuid]);
    if (pools.size > 1) {
      throw new MetadataError(
        'MIXED_POOLS',
        `the devices belong to ${pools.size} different pools: ${[...pools].map(([p, ms]) => `pool ${p} (members ${ms.join(', ')})`).join('; ')}`,
      );
    }
    const poolUuid = found[0]!.label.poolUuid;
    const seen = new Map<string, number>();
    for (const f of found) {
      const other = seen.get(f.label.memberUuid);
      if (other !== undefined) {
        throw new MetadataError(
          'DUPLICATE_MEMBER',
          `devices #${other} and #${f.index} both carry member ${f.label.memberUuid}: two handles of one disk, or a copied disk`,
          { members: [f.label.memberUuid] },
        );
      }
      seen.set(f.label.memberUuid, f.index);
    }

    // Load every replica's history one at a time, through one log buffer (a
    // label without a horizon has its whole ring read: up to ~96 MiB).
    const loaded = new Map<(typeof found)[number], LoadedReplica | DamagedReplica>();
    const scratch: LogScratch = { buffer: undefined };
    for (const f of found) {
      if (f.labels.valid.some((sb) => sb.isMetadataReplica)) loaded.set(f, await loadReplica(f.device, f.labels, scratch));
    }
    const good = [...loaded].filter((e): e is [(typeof found)[number], LoadedReplica] => !('damaged' in e[1]));
    if (good.length === 0) {
      const damaged = [...loaded].map(([f, r]) => `member ${f.label.memberUuid}: ${(r as DamagedReplica).damaged}`);
      throw new MetadataError(
        damaged.length > 0 ? 'CORRUPT' : 'NO_VALID_METADATA',
        damaged.length > 0
          ? `no metadata replica could be read: ${damaged.join('; ')}`
          : `none of the ${found.length} member(s) given is a metadata replica of pool ${poolUuid}; give at least one replica`,
        { members: [...loaded.keys()].map((f) => f.label.memberUuid) },
      );
    }

    // Group replicas into lineages: each joins the first newer history it is an ancestor of.
    good.sort((a, b) => b[1].tipGeneration - a[1].tipGeneration);
    const groups: Array<{ tip: LoadedReplica; view: HistoryView; members: string[]; unknown: boolean }> = [];
    for (const [f, r] of good) {
      let joined = false;
      let unknown = false;
      for (const g of groups) {
        const a = ancestry(r, g.view);
        if (a === 'ancestor') {
          g.members.push(f.label.memberUuid);
          joined = true;
          break;
        }
        if (a === 'unknown') unknown = true;
      }
      if (!joined) groups.push({ tip: r, view: viewOf(r), members: [f.label.memberUuid], unknown });
    }
    if (groups.length > 1) {
      const sides = groups.map((g) => ({ members: g.members, generation: g.tip.tipGeneration }));
      const unprovable = groups.some((g) => g.unknown)
        ? ` (some replica is older than the last ${MAX_SESSIONS_REMEMBERED} writing sessions, so it cannot be proven an ancestor; import without it)`
        : '';
      throw new MetadataError(
        'DIVERGED',
        `the metadata replicas hold diverged histories; refusing to choose: ${sides
          .map((s) => `members ${s.members.join(', ')} at generation ${s.generation}`)
          .join(' vs ')}${unprovable}`,
        { sides },
      );
    }
    const newest = groups[0]!.tip;

    if (!options.allowRewind) {
      for (const [f, r] of loaded) {
        if (r.evidenceGeneration > newest.tipGeneration) {
          const why = 'damaged' in r ? r.damaged : r.evidence;
          throw new MetadataError(
            'CORRUPT',
            `member ${f.label.memberUuid} shows that generation ${r.evidenceGeneration} existed, but the newest readable history ends at ${newest.tipGeneration} (${why}); no other replica given holds it. Pass allowRewind to accept the older state.`,
            { members: [f.label.memberUuid] },
          );
        }
      }
      for (const f of found) {
        if (!loaded.has(f) && f.label.generation > newest.tipGeneration) {
          throw new MetadataError(
            'NEWER_METADATA_MISSING',
            `member ${f.label.memberUuid} was labelled at generation ${f.label.generation}, newer than the newest replica given (${newest.tipGeneration}): the up-to-date replicas are missing. Add them, or pass allowRewind to accept the older state.`,
            { members: [f.label.memberUuid] },
          );
        }
      }
    }

    const members: StoreMember[] = [];
    const reported: ImportedMember[] = [];
    for (const f of found) {
      const r = loaded.get(f);
      const m: StoreMember = { ...blankMember(f.label.memberUuid, f.device, f.label.geometry), label: f.label, sbAgree: f.labels.sbAgree };
      let status: ImportedMemberStatus = 'not-replica';
      let generation = f.label.generation;
      if (r && !('damaged' in r)) {
        adoptReplica(m, r);
        m.inSync = r.tipGeneration === newest.tipGeneration && r.tipHash.equals(newest.tipHash);
        status = m.inSync ? 'current' : 'stale';
        generation = r.tipGeneration;
        if (r.evidenceGeneration > r.tipGeneration) {
          // Damaged (a newer copy may hold what it lost, or the pool was
          // rewound): appending after its break would leave records that the
          // next import takes for damage again, so it is rewritten whole.
          Object.assign(m, { inSync: false, rewrite: true });
          status = 'damaged';
        }
      } else if (r) {
        // Nothing of it can be trusted; it is rewritten whole at the next write.
        Object.assign(m, { isReplica: true, label: undefined, sbAgree: false });
        status = 'damaged';
      } else if (f.label.generation > newest.tipGeneration) {
        m.relabel = true; // rewound: its label names an abandoned generation
      }
      members.push(m);
      reported.push({ uuid: m.uuid, deviceIndex: f.index, generation, isReplica: m.isReplica, status, geometry: m.geometry });
    }
    const replicaTarget = Math.max(...found.map((f) => f.label.replicaTarget), 1);
    const store = new MetadataStore({
      poolUuid,
      slabSize: found[0]!.label.geometry.slabSize,
      replicaTarget,
      members,
      checkpoint: newest.checkpoint,
      tail: newest.events,
      sessions: newest.sessions,
      sessionStarted: false,
      onMemberFailed: options.onMemberFailed,
    });
    // This continuation runs inside the last read's completion callback,
    // which holds that read's buffer (up to a whole log ring) for as long as
    // the caller goes on synchronously (decoding, building its pool): one
    // turn of the event loop lets it go first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    return {
      store,
      state: newest.checkpoint.state,
      records: newest.events.filter((e) => e.kind === EventKind.RECORD).map((e) => e.payload),
      generation: newest.tipGeneration,
      members: reported,
      unrecognized,
    };
  }

  /** The newest valid label on a device, or undefined: for tools that ask "what is this disk?". */
  static async readLabel(device: BlockDevice): Promise<Superblock | undefined> {
    return (await readLabels(device)).best;
  }

  // ---------------------------------------------------------------- queries

  get generation(): number {
    return this.generationValue;
  }

  get replicaTarget(): number {
    return this.replicaTargetValue;
  }

  /** 0..1: the fullest up-to-date replica's log; checkpoint before it reaches 1. */
  get logFillRatio(): number {
    let ratio = 0;
    for (const m of this.memberMap.values()) {
      if (m.device && m.inSync) ratio = Math.max(ratio, m.logUsed / m.geometry.logBytes);
    }
    return ratio;
  }

  members(): MemberStatus[] {
    return [...this.memberMap.values()].map((m) => ({
      uuid: m.uuid,
      online: m.device !== undefined,
      isReplica: m.isReplica,
      upToDate: m.isReplica && m.inSync && m.device !== undefined,
      geometry: m.geometry,
    }));
  }

  // ---------------------------------------------------------------- operations

  /** Appends one record; resolves with its generation once durable on every online replica. */
  append(record: Buffer): Promise<number> {
    if (!Buffer.isBuffer(record)) return Promise.reject(new MetadataError('INVALID_ARGUMENT', 'a record must be a Buffer'));
    // Copied: the caller may reuse its buffer while the append waits in the queue.
    const payload = Buffer.from(record);
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ kind: 'append', payload, resolve, reject });
      this.pump();
    });
  }

  /** Writes `state` as the new checkpoint (into each replica's idle slot, then its superblocks). */
  checkpoint(state: Buffer): Promise<void> {
    if (!Buffer.isBuffer(state)) return Promise.reject(new MetadataError('INVALID_ARGUMENT', 'a state must be a Buffer'));
    const copy = Buffer.from(state);
    return this.task(() => this.runCheckpoint(copy));
  }

  /**
   * The pool says a member failed: writes skip it from now on. Synchronous,
   * so the pool can stop using a member before its next record is logged.
   */
  memberFailed(uuid: string): void {
    const m = this.memberMap.get(uuid);
    if (!m) return;
    m.device = undefined;
    m.inSync = false;
  }

  /**
   * Takes a member offline (device undefined) or back online. A returning
   * device is re-read: its label must name this pool and member, and a
   * replica's history must be an ancestor of the store's (else DIVERGED);
   * it is then brought up to date. Also accepts a labelled member of this
   * pool that was not given at import.
   */
  setMemberOnline(uuid: string, device: BlockDevice | undefined): Promise<void> {
    if (!device) {
      if (!this.memberMap.has(uuid)) return Promise.reject(new MetadataError('UNKNOWN_MEMBER', `no member ${uuid} in pool ${this.poolUuid}`));
      this.memberFailed(uuid);
      return Promise.resolve();
    }
    return this.task(() => this.runSetOnline(uuid, device));
  }

  /** Labels new members (not replicas at first; promoted when replicas are short). */
  addMembers(members: readonly StoreMemberInput[], options: AddMembersOptions = {}): Promise<void> {
    return this.task(() => this.runAddMembers(members, options));
  }

  /** Forgets a member and wipes its labels (when reachable), promoting another replica first if needed. */
  removeMember(uuid: string): Promise<void> {
    return this.task(() => this.runRemoveMember(uuid));
  }

  /** Waits for queued operations, then refuses new ones. Devices stay open (the pool owns them). */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.task(async () => {
      this.closed = true;
    }).catch(() => {});
    this.closed = true;
  }

  // ---------------------------------------------------------------- queue

  private task<T>(run: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ kind: 'task', run, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void (async () => {
      try {
        while (this.queue.length > 0) {
          const head = this.queue[0]!;
          const refusal = this.refusal();
          if (refusal) {
            this.queue.shift();
            head.reject(refusal);
            continue;
          }
          if (head.kind === 'task') {
            this.queue.shift();
            try {
              head.resolve(await head.run());
            } catch (error) {
              head.reject(error);
            }
          } else {
            try {
              await this.runAppends();
            } catch (error) {
              // A bug, not a device failure: what reached the disks is unknown, so stop.
              this.failure ??= new MetadataError('STORE_FAILED', `metadata store stopped: ${describe(error)}`, {}, { cause: error });
            }
          }
        }
      } finally {
        this.pumping = false;
      }
    })();
  }

  private refusal(): MetadataError | undefined {
    if (this.closed) return new MetadataError('CLOSED', 'the metadata store is closed');
    return this.failure;
  }

  // ---------------------------------------------------------------- append

  /** Takes the appends at the head of the queue that fit one batch, and writes them. */
  private async runAppends(): Promise<void> {
    await this.maintainReplicas();
    const targets = this.onlineInSync();
    if (targets.length === 0) {
      const item = this.queue.shift()!;
      item.reject(new MetadataError('NO_REPLICAS', `no metadata replica of pool ${this.poolUuid} is online`));
      return;
    }
    const sizes: number[] = this.sessionStarted ? [] : [SESSION_PAYLOAD_BYTES];
    const batch: Array<Extract<QueueItem, { kind: 'append' }>> = [];
    while (this.queue.length > 0) {
      const item = this.queue[0]!;
      if (item.kind !== 'append') break;
      const bytes = logBatchBytes([...sizes, item.payload.length]);
      const full = targets.find((m) => placeBatch(m, bytes) === undefined);
      if (batch.length > 0 && (full || bytes > MAX_BATCH_BYTES)) break;
      if (full) {
        this.queue.shift();
        item.reject(
          new MetadataError(
            'LOG_FULL',
            `the metadata log of member ${full.uuid} has ${full.geometry.logBytes - full.logUsed} of ${full.geometry.logBytes} bytes free, ` +
              `too few for a record of ${item.payload.length} bytes: checkpoint first`,
          ),
        );
        return;
      }
      this.queue.shift();
      batch.push(item);
      sizes.push(item.payload.length);
    }
    if (batch.length === 0) return;

    const events: HistoryEvent[] = [];
    if (!this.sessionStarted) events.push(this.startSession());
    for (const item of batch) events.push(this.nextEvent(EventKind.RECORD, item.payload));
    this.tail.push(...events);
    const last = events[events.length - 1]!.generation;
    try {
      await Promise.all(targets.map((m) => this.guarded(m, () => this.writeBatch(m, events))));
      await this.afterWrite(`records up to generation ${last}`);
    } catch (error) {
      for (const item of batch) item.reject(error);
      throw error;
    }
    batch.forEach((item, i) => item.resolve(events[events.length - batch.length + i]!.generation));
  }

  /** Appends events to m's log ring (step 1–2 of the append order). */
  private async writeBatch(m: StoreMember, events: readonly HistoryEvent[]): Promise<void> {
    // Captured once: the pool may call memberFailed (clearing m.device) while this runs.
    const device = deviceOf(m);
    const bytes = encodeLogBatch(this.poolUuid, this.checkpointImage.generation, m.logSalt, events);
    const at = placeBatch(m, bytes.length);
    if (at === undefined) throw new MetadataError('LOG_FULL', `no room in member ${m.uuid}'s log`);
    await this.raiseHorizon(m, device, usedAfter(m, at, bytes.length));
    await writeRange(device, m.geometry.logOffset + at, bytes);
    await device.flush();
    commitPlacement(m, at, bytes.length);
    m.tipGeneration = events[events.length - 1]!.generation;
  }

  /**
   * Step 0 of an append: before the log's use reaches `used`, both labels
   * get a horizon beyond it, so that import, reading up to the horizon, sees
   * every record of this log (the theory comment). Labels that disagree (one
   * copy torn, or from an interrupted step 0) are made equal first too: the
   * other copy's horizon may be lower than the one m goes by.
   */
  private async raiseHorizon(m: StoreMember, device: BlockDevice, used: number): Promise<void> {
    const size = m.geometry.logBytes;
    const raise = used >= m.logHorizon && m.logHorizon < size;
    if (!raise && m.sbAgree) return;
    // A replica that receives records always has a label (import or installCheckpoint gave it one).
    if (!m.label) throw new MetadataError('STORE_FAILED', `replica ${m.uuid} has no label to raise its log horizon in`);
    const logHorizon = raise ? Math.min(size, used + horizonStep(m.geometry)) : m.logHorizon;
    const label: Superblock = raise ? { ...m.label, logHorizonBytes: logHorizon } : m.label;
    await writeLabel(device, m.geometry, label);
    Object.assign(m, { label, sbAgree: true, logHorizon });
  }

  // ---------------------------------------------------------------- checkpoint

  private async runCheckpoint(state: Buffer): Promise<void> {
    const online = [...this.memberMap.values()].filter((m) => m.device);
    const fits = (m: StoreMember): boolean => state.length <= checkpointCapacity(m.geometry);
    const targets = online.filter((m) => m.isReplica && fits(m));
    const candidates = online.filter((m) => !m.isReplica && fits(m)).sort(bySlotSize);
    while (targets.length < this.replicaTargetValue && candidates.length > 0) targets.push(candidates.shift()!);
    if (targets.length === 0) {
      if (online.length === 0) throw new MetadataError('NO_REPLICAS', `no member of pool ${this.poolUuid} is online`);
      const biggest = Math.max(...online.map((m) => checkpointCapacity(m.geometry)));
      throw new MetadataError(
        'METADATA_FULL',
        `a checkpoint of ${state.length} bytes does not fit any online member (largest slot holds ${biggest} bytes)`,
      );
    }

    // Replicas whose slot is too small for this state stop being replicas.
    for (const m of online) {
      if (m.isReplica && !fits(m)) {
        m.isReplica = false;
        m.inSync = false;
      }
    }
    if (!this.sessionStarted) this.tail.push(this.startSession());
    const prevHash = this.tipHash;
    const generation = this.generationValue + 1;
    const hash = historyHash(prevHash, generation, EventKind.CHECKPOINT, state);
    const image: CheckpointImage = {
      generation,
      prevHash,
      hash,
      state,
      stateCrc32c: crc32c(state),
      sessions: this.sessions.slice(-MAX_SESSIONS_REMEMBERED),
    };
    this.generationValue = generation;
    this.tipHash = hash;
    this.checkpointImage = image;
    this.tail = [];

    await Promise.all(
      targets.map((m) =>
        this.guarded(m, async () => {
          // An up-to-date replica continues its ring; any other starts it afresh.
          const head = m.inSync ? m.logTail % m.geometry.logBytes : 0;
          await this.installCheckpoint(m, image, head);
        }),
      ),
    );
    await this.afterWrite(`checkpoint ${generation}`);
    // Members that are not (or no longer) replicas carry the new generation too.
    const others = [...this.memberMap.values()].filter((m) => m.device && !m.isReplica);
    await Promise.all(others.map((m) => this.guarded(m, () => this.writeMemberLabel(m))));
  }

  /**
   * Writes checkpoint `image` into m's idle slot and points both superblocks
   * at it (steps 1–6 of the write order); the log restarts at `head`.
   */
  private async installCheckpoint(m: StoreMember, image: CheckpointImage, head: number): Promise<void> {
    const device = deviceOf(m);
    m.inSync = false;
    if (m.slot !== undefined && m.label && !m.sbAgree) {
      // One copy names the slot we are about to overwrite: make both name the good one first.
      await writeLabel(device, m.geometry, m.label);
      m.sbAgree = true;
    }
    const slot: 0 | 1 = m.slot === undefined ? 0 : m.slot === 0 ? 1 : 0;
    await this.writeSlot(device, m.geometry, slot, image);
    // A new salt: records of the log's previous incarnation no longer count (walkLog).
    const logSalt = newLogSalt();
    const logHorizon = horizonStep(m.geometry);
    const label = this.labelFor(m, { slot, checkpoint: image, logHead: head, logSalt, logHorizon });
    await writeLabel(device, m.geometry, label);
    Object.assign(m, {
      label,
      sbAgree: true,
      slot,
      logSalt,
      logHorizon,
      rewrite: false,
      relabel: false,
      isReplica: true,
      checkpointGeneration: image.generation,
      checkpointHash: image.hash,
      tipGeneration: image.generation,
      logHead: head,
      logTail: head,
      logUsed: 0,
    });
    m.inSync = image === this.checkpointImage && this.tail.length === 0;
  }

  private async writeSlot(device: BlockDevice, geometry: MemberGeometry, slot: 0 | 1, image: CheckpointImage): Promise<void> {
    const header = encodeCheckpointHeader({
      poolUuid: this.poolUuid,
      generation: image.generation,
      stateBytes: image.state.length,
      stateCrc32c: image.stateCrc32c,
      prevHash: image.prevHash,
      hash: image.hash,
      sessions: image.sessions,
    });
    const offset = slot === 0 ? geometry.checkpointSlotAOffset : geometry.checkpointSlotBOffset;
    // Two writes, one flush: the header's CRCs tell a half-written slot, and
    // nothing names this slot until the flush has returned.
    await device.write(offset, header);
    await writeRange(device, offset + CHECKPOINT_HEADER_BYTES, image.state);
    await device.flush();
  }

  // ---------------------------------------------------------------- replicas

  /**
   * Brings the replica set back to shape: both superblock copies equal on
   * up-to-date replicas, stale replicas caught up, members promoted while
   * fewer up-to-date replicas than the target are online.
   */
  private async maintainReplicas(): Promise<void> {
    const online = (): StoreMember[] => [...this.memberMap.values()].filter((m) => m.device);
    for (const m of online().filter((m) => m.isReplica && !m.inSync)) {
      await this.guarded(m, () => this.catchUp(m));
    }
    const candidates = online()
      .filter((m) => !m.isReplica && this.canHold(m))
      .sort(bySlotSize);
    while (this.onlineInSync().length < this.replicaTargetValue && candidates.length > 0) {
      const m = candidates.shift()!;
      await this.guarded(m, () => this.catchUp(m));
    }
    for (const m of this.onlineInSync().filter((m) => !m.sbAgree && m.label)) {
      await this.guarded(m, async () => {
        await writeLabel(deviceOf(m), m.geometry, m.label!);
        m.sbAgree = true;
      });
    }
    for (const m of online().filter((m) => !m.isReplica && m.relabel)) {
      await this.guarded(m, () => this.writeMemberLabel(m));
    }
  }

  /** Whether m can hold the current checkpoint and log (to become an up-to-date replica now). */
  private canHold(m: StoreMember): boolean {
    return (
      this.checkpointImage.state.length <= checkpointCapacity(m.geometry) &&
      logBatchBytes(this.tail.map((e) => e.payload.length)) <= m.geometry.logBytes
    );
  }

  /** Writes what m lacks of the current history: the missing records, or checkpoint + log. */
  private async catchUp(m: StoreMember): Promise<void> {
    const image = this.checkpointImage;
    const sameCheckpoint =
      m.isReplica &&
      !m.rewrite &&
      m.label !== undefined &&
      m.checkpointGeneration === image.generation &&
      m.checkpointHash?.equals(image.hash) === true;
    if (sameCheckpoint && m.tipGeneration >= image.generation) {
      const missing = this.tail.filter((e) => e.generation > m.tipGeneration);
      if (missing.length === 0) {
        m.inSync = true;
        return;
      }
      if (placeBatch(m, logBatchBytes(missing.map((e) => e.payload.length))) !== undefined) {
        await this.writeBatch(m, missing);
        m.inSync = true;
        return;
      }
    }
    if (!this.canHold(m)) return;
    await this.installCheckpoint(m, image, 0);
    if (this.tail.length > 0) await this.writeBatch(m, this.tail);
    m.inSync = true;
  }

  /** After a write: promote if replicas were lost; fail the store if none holds the history. */
  private async afterWrite(what: string): Promise<void> {
    await this.maintainReplicas();
    if (this.onlineInSync().length === 0) {
      this.failure = new MetadataError('NO_REPLICAS', `${what} reached no metadata replica: every replica failed; import again`);
      throw this.failure;
    }
  }

  private onlineInSync(): StoreMember[] {
    return [...this.memberMap.values()].filter((m) => m.device && m.isReplica && m.inSync);
  }

  /** Runs member I/O; any failure takes the member offline and tells the pool. */
  private async guarded(m: StoreMember, io: () => Promise<void>): Promise<void> {
    if (!m.device) return;
    try {
      await io();
    } catch (error) {
      // A bug is not a member failure: let it surface.
      if (isBug(error)) throw error;
      const news = m.device !== undefined; // else the pool took it offline itself, meanwhile
      m.device = undefined;
      m.inSync = false;
      if (news) this.onMemberFailed?.(m.uuid, error);
    }
  }

  // ---------------------------------------------------------------- membership

  private async runSetOnline(uuid: string, device: BlockDevice): Promise<void> {
    for (const other of this.memberMap.values()) {
      if (other.device === device && other.uuid !== uuid) {
        throw new MetadataError('DUPLICATE_DEVICE', `that device is already member ${other.uuid}`);
      }
    }
    const labels = await readLabels(device);
    const best = labels.best;
    if (!best) throw new MetadataError('WRONG_MEMBER', `the device has no Spindle label (${labels.reason}); add it as a new member instead`);
    if (best.poolUuid !== this.poolUuid || best.memberUuid !== uuid) {
      throw new MetadataError(
        'WRONG_MEMBER',
        `the device is member ${best.memberUuid} of pool ${best.poolUuid}, not member ${uuid} of pool ${this.poolUuid}`,
      );
    }
    // What the store knew of it before is void: the disk may have changed while away.
    const fresh: StoreMember = { ...blankMember(uuid, undefined, best.geometry), label: best, sbAgree: labels.sbAgree };
    if (labels.valid.some((sb) => sb.isMetadataReplica)) {
      const r = await loadReplica(device, labels, { buffer: undefined });
      fresh.isReplica = true;
      if ('damaged' in r) {
        fresh.label = undefined;
        fresh.sbAgree = false;
      } else {
        const a = ancestry(r, this.view());
        if (a !== 'ancestor') {
          throw new MetadataError(
            'DIVERGED',
            `member ${uuid} holds a history (generation ${r.tipGeneration}) that is not an ancestor of this pool's (generation ${this.generationValue})` +
              (a === 'unknown' ? ': it is too old to compare' : ': the pool was written elsewhere while it was away'),
            { sides: [{ members: [uuid], generation: r.tipGeneration }] },
          );
        }
        adoptReplica(fresh, r);
        fresh.rewrite = r.evidenceGeneration > r.tipGeneration;
      }
    } else if (best.generation > this.generationValue) {
      throw new MetadataError(
        'DIVERGED',
        `member ${uuid} was labelled at generation ${best.generation}, newer than this pool's ${this.generationValue}: the pool was written elsewhere`,
        { sides: [{ members: [uuid], generation: best.generation }] },
      );
    }
    fresh.device = device;
    const known = this.memberMap.get(uuid);
    if (known) Object.assign(known, fresh);
    else this.memberMap.set(uuid, fresh);
    await this.maintainReplicas();
  }

  private async runAddMembers(inputs: readonly StoreMemberInput[], options: AddMembersOptions): Promise<void> {
    const existing = [...this.memberMap.values()];
    const prepared = await prepareNewMembers(inputs, this.slabSize, {
      poolUuid: this.poolUuid,
      force: options.force ?? false,
      metadataBytes: options.metadataBytes,
      existing,
    });
    const added = prepared.map((p) => blankMember(p.uuid, p.device, p.geometry));
    await Promise.all(added.map((m) => this.writeMemberLabel(m).catch(ioError(m.uuid))));
    for (const m of added) this.memberMap.set(m.uuid, m);
    await this.maintainReplicas();
  }

  private async runRemoveMember(uuid: string): Promise<void> {
    const m = this.memberMap.get(uuid);
    if (!m) throw new MetadataError('UNKNOWN_MEMBER', `no member ${uuid} in pool ${this.poolUuid}`);
    this.memberMap.delete(uuid);
    await this.maintainReplicas();
    if (this.onlineInSync().length === 0 && m.device && m.inSync) {
      this.memberMap.set(uuid, m);
      throw new MetadataError('INVALID_ARGUMENT', `member ${uuid} holds the only up-to-date metadata and no other member can take it over`);
    }
    if (m.device) {
      // Best effort: an unreachable label only makes the disk look like a stale member later.
      const zero = Buffer.alloc(METADATA_BLOCK);
      try {
        await m.device.write(0, zero);
        await m.device.flush();
        await m.device.write(m.geometry.superblockBOffset, zero);
        await m.device.flush();
      } catch {
        /* see above */
      }
    }
  }

  // ---------------------------------------------------------------- history helpers

  private nextEvent(kind: LogRecordKind, payload: Buffer): HistoryEvent {
    const generation = this.generationValue + 1;
    const prevHash = this.tipHash;
    const hash = historyHash(prevHash, generation, kind, payload);
    this.generationValue = generation;
    this.tipHash = hash;
    return { generation, kind, payload, prevHash, hash };
  }

  /** The first event of this store's writing session (see the theory comment). */
  private startSession(): HistoryEvent {
    const payload = Buffer.alloc(SESSION_PAYLOAD_BYTES);
    randomBytes(16).copy(payload, 0);
    payload.writeBigUInt64LE(BigInt(Date.now()), 16);
    const event = this.nextEvent(EventKind.SESSION, payload);
    this.sessions.push({ generation: event.generation, hash: event.hash });
    if (this.sessions.length > MAX_SESSIONS_REMEMBERED) this.sessions = this.sessions.slice(-MAX_SESSIONS_REMEMBERED);
    this.sessionStarted = true;
    return event;
  }

  private view(): HistoryView {
    const known = new Map<number, string>();
    known.set(this.checkpointImage.generation, this.checkpointImage.hash.toString('hex'));
    for (const e of this.tail) known.set(e.generation, e.hash.toString('hex'));
    for (const s of this.sessions) known.set(s.generation, s.hash.toString('hex'));
    return { tipGeneration: this.generationValue, tipHash: this.tipHash, known, sessions: this.sessions };
  }

  private labelFor(
    m: StoreMember,
    replica: { slot: 0 | 1; checkpoint: CheckpointImage; logHead: number; logSalt: number; logHorizon: number } | undefined,
  ): Superblock {
    return {
      poolUuid: this.poolUuid,
      memberUuid: m.uuid,
      generation: replica ? replica.checkpoint.generation : this.generationValue,
      isMetadataReplica: replica !== undefined,
      replicaTarget: this.replicaTargetValue,
      geometry: m.geometry,
      checkpoint: replica && {
        slot: replica.slot,
        generation: replica.checkpoint.generation,
        stateBytes: replica.checkpoint.state.length,
        stateCrc32c: replica.checkpoint.stateCrc32c,
        hash: replica.checkpoint.hash,
      },
      logHeadOffset: replica?.logHead ?? 0,
      logTailOffset: replica?.logHead ?? 0,
      logSalt: replica?.logSalt ?? 0,
      logHorizonBytes: replica?.logHorizon,
    };
  }

  private async writeMemberLabel(m: StoreMember): Promise<void> {
    const label = this.labelFor(m, undefined);
    await writeLabel(deviceOf(m), m.geometry, label);
    m.label = label;
    m.sbAgree = true;
    m.relabel = false;
  }
}

// ------------------------------------------------------------------ labels

/** Superblock A, flush, superblock B, flush (steps 3–6). */
async function writeLabel(device: BlockDevice, geometry: MemberGeometry, label: Superblock): Promise<void> {
  const block = encodeSuperblock(label);
  await device.write(geometry.superblockAOffset, block);
  await device.flush();
  await device.write(geometry.superblockBOffset, block);
  await device.flush();
}

async function readBlock(device: BlockDevice, offset: number): Promise<Buffer | string> {
  if (offset < 0 || offset + METADATA_BLOCK > device.size) return 'outside the device';
  try {
    return await device.read(offset, METADATA_BLOCK);
  } catch (error) {
    return `read failed: ${describe(error)}`;
  }
}

/** Both superblock copies of a device (B where this device's end is, and where A says B is). */
async function readLabels(device: BlockDevice): Promise<LabelRead> {
  const rawA = await readBlock(device, 0);
  const endB = alignDown(device.size, METADATA_BLOCK) - METADATA_BLOCK;
  const rawB = await readBlock(device, endB);
  const a = typeof rawA === 'string' ? { ok: false as const, reason: rawA } : decodeSuperblock(rawA);
  let b = typeof rawB === 'string' ? { ok: false as const, reason: rawB } : decodeSuperblock(rawB);
  let rawBUsed = rawB;
  if (a.ok && a.value.geometry.superblockBOffset !== endB) {
    // The device grew (or shrank) since format: B is where A says.
    const moved = await readBlock(device, a.value.geometry.superblockBOffset);
    const decoded = typeof moved === 'string' ? { ok: false as const, reason: moved } : decodeSuperblock(moved);
    if (decoded.ok || !b.ok) {
      b = decoded;
      rawBUsed = moved;
    }
  }
  // A device smaller than the member it was formatted as has lost slabs: not that member.
  const fitsDevice = (sb: Superblock): boolean => sb.geometry.memberSize <= device.size;
  const valid = [a, b]
    .filter((d): d is { ok: true; value: Superblock } => d.ok)
    .map((d) => d.value)
    .filter(fitsDevice)
    .sort((x, y) => y.generation - x.generation);
  const sbAgree = a.ok && b.ok && Buffer.isBuffer(rawA) && Buffer.isBuffer(rawBUsed) && rawA.equals(rawBUsed);
  const why = (d: typeof a): string =>
    d.ok ? `formatted for ${d.value.geometry.memberSize} bytes but the device has ${device.size}` : d.reason;
  const reason = valid.length > 0 ? '' : `superblock A: ${why(a)}; superblock B: ${why(b)}`;
  return { best: valid[0], valid, sbAgree, blockZero: Buffer.isBuffer(rawA) ? rawA : undefined, reason };
}

// ------------------------------------------------------------------ loading a replica

/** The newest history a replica holds, trying its superblock copies newest first. */
async function loadReplica(device: BlockDevice, labels: LabelRead, scratch: LogScratch): Promise<LoadedReplica | DamagedReplica> {
  let evidenceGeneration = 0;
  const problems: string[] = [];
  const tried = new Set<string>();
  for (const sb of labels.valid) {
    if (!sb.isMetadataReplica || !sb.checkpoint) continue;
    const key = encodeSuperblock(sb).toString('hex');
    if (tried.has(key)) continue;
    tried.add(key);
    const checkpoint = await readCheckpoint(device, sb);
    if (typeof checkpoint === 'string') {
      problems.push(`checkpoint ${sb.checkpoint.generation} in slot ${'AB'[sb.checkpoint.slot]}: ${checkpoint}`);
      // Its superblock was written only after the slot was flushed: the checkpoint existed.
      evidenceGeneration = Math.max(evidenceGeneration, sb.checkpoint.generation);
      continue;
    }
    let walked: ReturnType<typeof walkLog>;
    try {
      walked = await readAndWalkLog(device, sb, checkpoint, scratch);
    } catch (error) {
      if (isBug(error)) throw error;
      problems.push(`log unreadable: ${describe(error)}`);
      evidenceGeneration = Math.max(evidenceGeneration, sb.checkpoint.generation);
      continue;
    }
    const sessions = [...checkpoint.sessions];
    for (const e of walked.events) if (e.kind === EventKind.SESSION) sessions.push({ generation: e.generation, hash: e.hash });
    const evidence = Math.max(evidenceGeneration, walked.evidenceGeneration);
    return {
      label: sb,
      sbAgree: labels.sbAgree,
      checkpoint,
      events: walked.events,
      tipGeneration: walked.tipGeneration,
      tipHash: walked.tipHash,
      sessions,
      logHead: walked.head,
      logTail: walked.tail,
      logUsed: walked.used,
      // Read as the writer must see it: a label without a horizon leaves the whole ring to fill.
      logHorizon: sb.logHorizonBytes ?? sb.geometry.logBytes,
      evidenceGeneration: Math.max(evidence, walked.tipGeneration),
      evidence: [...problems, ...(walked.evidence ? [walked.evidence] : [])].join('; ') || undefined,
    };
  }
  return { damaged: problems.join('; ') || 'no replica superblock', evidenceGeneration };
}

async function readCheckpoint(device: BlockDevice, sb: Superblock): Promise<CheckpointImage | string> {
  const ref = sb.checkpoint!;
  const offset = ref.slot === 0 ? sb.geometry.checkpointSlotAOffset : sb.geometry.checkpointSlotBOffset;
  let header: Buffer;
  try {
    header = await device.read(offset, CHECKPOINT_HEADER_BYTES);
  } catch (error) {
    return `unreadable: ${describe(error)}`;
  }
  const decoded = decodeCheckpointHeader(header);
  if (!decoded.ok) return decoded.reason;
  const h = decoded.value;
  if (h.poolUuid !== sb.poolUuid) return `belongs to pool ${h.poolUuid}`;
  if (h.generation !== ref.generation || h.stateBytes !== ref.stateBytes || h.stateCrc32c !== ref.stateCrc32c || !h.hash.equals(ref.hash)) {
    return 'does not match its superblock';
  }
  let state: Buffer;
  try {
    state = await readRange(device, offset + CHECKPOINT_HEADER_BYTES, h.stateBytes);
  } catch (error) {
    return `state unreadable: ${describe(error)}`;
  }
  const stateCrc32c = crc32c(state);
  if (stateCrc32c !== h.stateCrc32c) return 'state checksum mismatch';
  if (!historyHash(h.prevHash, h.generation, EventKind.CHECKPOINT, state).equals(h.hash)) return 'history hash mismatch';
  if (h.sessions.length === 0 || h.sessions.some((s) => s.generation > h.generation)) return 'bad session table';
  return { generation: h.generation, prevHash: h.prevHash, hash: h.hash, state, stateCrc32c, sessions: h.sessions };
}

/**
 * Reads sb's log from its head up to its horizon and follows the chain. The
 * whole ring is read instead when the label names no horizon, or when the
 * log shows that a writer went past it: a record of this log at the ring's
 * start while the horizon ends before it, or a chain running up to the
 * horizon's end (never so for this writer, which keeps its use below it).
 */
async function readAndWalkLog(
  device: BlockDevice,
  sb: Superblock,
  checkpoint: CheckpointImage,
  scratch: LogScratch,
): Promise<ReturnType<typeof walkLog>> {
  const size = sb.geometry.logBytes;
  const head = sb.logHeadOffset % size;
  let bytes = Math.min(size, sb.logHorizonBytes ?? size);
  // The ring's start lies outside [head, head + bytes) (with head 0 it is the head itself).
  if (bytes < size && head > 0 && size - head >= bytes) {
    const start = await device.read(sb.geometry.logOffset, Math.min(METADATA_BLOCK, size));
    const d = decodeLogRecordHeader(start, 0);
    if (d.ok && ofThisLog(d.value, sb, checkpoint)) bytes = size;
  }
  const walked = walkLog(await readLog(device, sb, head, bytes, scratch), head, sb, checkpoint);
  if (!walked.pastHorizon || bytes === size) return walked;
  return walkLog(await readLog(device, sb, head, size, scratch), head, sb, checkpoint);
}

/**
 * A buffer for reading logs into, reused from one replica to the next: the
 * walk copies out what it keeps, so a log's bytes are dead once it returns.
 */
interface LogScratch {
  buffer: Buffer | undefined;
}

/** `bytes` of sb's log ring from `head` on (wrapping to its start), in scratch's buffer. */
async function readLog(device: BlockDevice, sb: Superblock, head: number, bytes: number, scratch: LogScratch): Promise<Buffer> {
  if (!scratch.buffer || scratch.buffer.length < bytes) scratch.buffer = Buffer.allocUnsafe(bytes);
  const out = scratch.buffer.subarray(0, bytes);
  const first = Math.min(bytes, sb.geometry.logBytes - head);
  await readInto(device, sb.geometry.logOffset + head, out.subarray(0, first));
  if (bytes > first) await readInto(device, sb.geometry.logOffset, out.subarray(first));
  return out;
}

/** Whether a record header belongs to the log sb names (this pool, epoch and incarnation). */
function ofThisLog(h: { poolUuid: string; logSalt: number; checkpointGeneration: number }, sb: Superblock, checkpoint: CheckpointImage): boolean {
  return h.poolUuid === sb.poolUuid && h.logSalt === sb.logSalt && h.checkpointGeneration === checkpoint.generation;
}

/**
 * Follows the hash chain from the log head. The next record is right after
 * the previous one, or at the next block (a new batch), or at the ring's
 * start (the batch wrapped); only a record with the next generation, this
 * epoch, this pool, the previous hash and good CRCs is taken.
 *
 * `log` holds the ring from the head on: log[u] is ring offset (head + u) mod
 * size, so u counts log use exactly as the writer does (skipped ring ends
 * included), and one lap at most. The ring's start is at u = size - head;
 * no record crosses it. Alignment is the ring's (the head is block-aligned
 * anyway, as the writer only puts it at block boundaries).
 */
function walkLog(
  log: Buffer,
  head: number,
  sb: Superblock,
  checkpoint: CheckpointImage,
): {
  events: HistoryEvent[];
  tipGeneration: number;
  tipHash: Buffer;
  head: number;
  tail: number;
  used: number;
  evidenceGeneration: number;
  evidence: string | undefined;
  /** The chain may go on past what was read (see readAndWalkLog). */
  pastHorizon: boolean;
} {
  const size = sb.geometry.logBytes;
  const have = log.length;
  const wrapAt = size - head;
  const ringOf = (u: number): number => (u < wrapAt ? head + u : u - wrapAt);
  const nextBlock = (u: number): number => u + alignUp(ringOf(u), METADATA_BLOCK) - ringOf(u);
  /** The bytes a record starting at u may use: it never crosses the ring's end. */
  const view = (u: number): Buffer => {
    const limit = u < wrapAt ? wrapAt : size;
    return limit < have ? log.subarray(0, limit) : log;
  };
  const events: HistoryEvent[] = [];
  let prev = checkpoint.hash;
  let expect = checkpoint.generation + 1;
  let pastHorizon = false;
  const take = (at: number): { event: HistoryEvent; next: number } | undefined => {
    const limit = at < wrapAt ? wrapAt : size;
    if (at >= limit) return undefined;
    // The ring's start, not read: readAndWalkLog looked there for this log's records.
    if (at === wrapAt && at >= have) return undefined;
    // The writer keeps its records a block short of the horizon at least; a
    // candidate that close to the end of what was read means it did not.
    if (have < limit && at + METADATA_BLOCK > have) {
      pastHorizon = true;
      return undefined;
    }
    const d = decodeLogRecordHeader(view(at), at);
    if (!d.ok) return undefined;
    const h = d.value;
    if (h.generation !== expect || !ofThisLog(h, sb, checkpoint)) return undefined;
    if (!h.prevHash.equals(prev) || (h.kind !== EventKind.RECORD && h.kind !== EventKind.SESSION)) return undefined;
    const end = at + h.headerBytes + h.payloadBytes;
    if (end > limit) return undefined;
    if (end > have) {
      pastHorizon = true;
      return undefined;
    }
    const payload = Buffer.from(log.subarray(at + h.headerBytes, end));
    if (crc32c(payload) !== h.payloadCrc32c) return undefined;
    const kind = h.kind as LogRecordKind;
    const event = { generation: h.generation, kind, payload, prevHash: h.prevHash, hash: historyHash(h.prevHash, h.generation, kind, payload) };
    return { event, next: at + alignUp(h.headerBytes + h.payloadBytes, LOG_RECORD_ALIGNMENT) };
  };
  // Each record moves the cursor on by at least its header, within one lap: this ends.
  let cursor = 0;
  for (;;) {
    const block = nextBlock(cursor);
    let found = take(cursor);
    if (!found && block !== cursor) found = take(block);
    if (!found && cursor < wrapAt && block !== wrapAt) found = take(wrapAt);
    if (!found) break;
    cursor = found.next;
    events.push(found.event);
    prev = found.event.hash;
    expect++;
  }
  const end = nextBlock(cursor);
  const tipGeneration = expect - 1;

  // Any record of this epoch written in a batch after the one holding the
  // break shows that the break is damage, not the end. All of this log lies
  // within what was read (the horizon), so scanning it is enough.
  let evidenceGeneration = tipGeneration;
  for (let i = log.indexOf(LOG_RECORD_MAGIC); i !== -1; i = log.indexOf(LOG_RECORD_MAGIC, i + 1)) {
    if (ringOf(i) % LOG_RECORD_ALIGNMENT !== 0) continue;
    const d = decodeLogRecordHeader(view(i), i);
    if (!d.ok) continue;
    const h = d.value;
    if (!ofThisLog(h, sb, checkpoint)) continue;
    if (h.batchFirstGeneration > tipGeneration + 1 && h.generation > evidenceGeneration) evidenceGeneration = h.generation;
  }
  return {
    events,
    tipGeneration,
    tipHash: prev,
    head,
    tail: ringOf(end) % size,
    used: end,
    evidenceGeneration,
    evidence: evidenceGeneration > tipGeneration ? `log record ${tipGeneration + 1} is damaged but later records exist` : undefined,
    pastHorizon,
  };
}

// ------------------------------------------------------------------ ancestry

function viewOf(r: LoadedReplica): HistoryView {
  const known = new Map<number, string>();
  known.set(r.checkpoint.generation, r.checkpoint.hash.toString('hex'));
  for (const e of r.events) known.set(e.generation, e.hash.toString('hex'));
  for (const s of r.sessions) known.set(s.generation, s.hash.toString('hex'));
  return { tipGeneration: r.tipGeneration, tipHash: r.tipHash, known, sessions: r.sessions };
}

/** Whether r's history is a prefix of n's (see the theory comment). */
function ancestry(r: { tipGeneration: number; tipHash: Buffer; sessions: readonly SessionStart[] }, n: HistoryView): Ancestry {
  if (r.tipGeneration > n.tipGeneration) return 'diverged';
  const atTip = n.known.get(r.tipGeneration);
  if (atTip !== undefined) return atTip === r.tipHash.toString('hex') ? 'ancestor' : 'diverged';
  const start = r.sessions.reduce<SessionStart | undefined>((a, s) => (a && a.generation > s.generation ? a : s), undefined);
  if (!start) return 'unknown';
  const atStart = n.known.get(start.generation);
  if (atStart === undefined) return 'unknown';
  if (atStart !== start.hash.toString('hex')) return 'diverged';
  const next = n.sessions.filter((s) => s.generation > start.generation).reduce((min, s) => Math.min(min, s.generation), Infinity);
  return next > r.tipGeneration ? 'ancestor' : 'diverged';
}

// ------------------------------------------------------------------ new members

/**
 * Checks new members before anything is written, then probes for two
 * handles of one disk. Throws MetadataError naming the member at fault.
 */
async function prepareNewMembers(
  inputs: readonly StoreMemberInput[],
  slabSize: number,
  options: { poolUuid: string; force: boolean; metadataBytes: number | undefined; existing: readonly StoreMember[] },
): Promise<Array<{ uuid: string; device: BlockDevice; geometry: MemberGeometry }>> {
  const uuids = new Set(options.existing.map((m) => m.uuid));
  const devices = new Map<BlockDevice, string>(options.existing.filter((m) => m.device).map((m) => [m.device!, m.uuid]));
  const prepared: Array<{ uuid: string; device: BlockDevice; geometry: MemberGeometry }> = [];
  for (const input of inputs) {
    const uuid = input.uuid;
    if (!isUuid(uuid)) throw new MetadataError('INVALID_ARGUMENT', `member UUID ${JSON.stringify(uuid)} is not a UUID`);
    if (uuids.has(uuid)) throw new MetadataError('DUPLICATE_MEMBER', `member UUID ${uuid} is given twice`, { members: [uuid] });
    uuids.add(uuid);
    const twin = devices.get(input.device);
    if (twin !== undefined) {
      throw new MetadataError('DUPLICATE_DEVICE', `members ${twin} and ${uuid} are the same device`, { members: [twin, uuid] });
    }
    devices.set(input.device, uuid);
    if (input.device.capabilities.readOnly) throw new MetadataError('READ_ONLY', `the device for member ${uuid} is read-only`, { members: [uuid] });
    try {
      prepared.push({ uuid, device: input.device, geometry: memberGeometry(input.device.size, slabSize, { metadataBytes: options.metadataBytes }) });
    } catch (error) {
      if (error instanceof GeometryError) {
        const code = error.code === 'MEMBER_TOO_SMALL' ? 'MEMBER_TOO_SMALL' : 'INVALID_ARGUMENT';
        throw new MetadataError(code, `member ${uuid}: ${error.message}`, { members: [uuid] });
      }
      throw error;
    }
  }
  const labels = await Promise.all(prepared.map((p) => readLabels(p.device)));
  prepared.forEach((p, i) => {
    const sb = labels[i]!.best;
    if (!sb) return;
    const ours = sb.poolUuid === options.poolUuid;
    if (ours && options.existing.some((m) => m.uuid === sb.memberUuid)) {
      throw new MetadataError('DUPLICATE_DEVICE', `the device for member ${p.uuid} is already member ${sb.memberUuid} of this pool`, {
        members: [p.uuid, sb.memberUuid],
      });
    }
    // A label of this pool for this very member: an earlier add that did not finish.
    if (ours && sb.memberUuid === p.uuid) return;
    if (!options.force) {
      throw new MetadataError(
        'MEMBER_IN_OTHER_POOL',
        `the device for member ${p.uuid} is member ${sb.memberUuid} of pool ${sb.poolUuid} (generation ${sb.generation}); ` +
          `remove it from that pool first, or force to overwrite it`,
        { members: [p.uuid] },
      );
    }
  });
  if (prepared.length > 1) await probeForAliases(prepared, labels);
  return prepared;
}

/** Writes a distinct probe to block 0 of each device, reads them back, restores block 0. */
async function probeForAliases(prepared: ReadonlyArray<{ uuid: string; device: BlockDevice }>, labels: readonly LabelRead[]): Promise<void> {
  const nonce = randomBytes(16);
  const originals = labels.map((l) => l.blockZero);
  if (originals.some((b) => b === undefined)) {
    throw new MetadataError('IO_ERROR', `block 0 of member ${prepared[originals.findIndex((b) => !b)]!.uuid} cannot be read`);
  }
  let alias: [number, number] | undefined;
  let failure: unknown;
  try {
    for (let i = 0; i < prepared.length; i++) {
      await prepared[i]!.device.write(0, encodeProbe(nonce, i));
      await prepared[i]!.device.flush();
    }
    for (let i = 0; i < prepared.length && !alias; i++) {
      const seen = decodeProbe(await prepared[i]!.device.read(0, METADATA_BLOCK), nonce);
      if (seen !== i) alias = [i, seen ?? -1];
    }
  } catch (error) {
    failure = error;
  }
  // Restore in reverse: for two handles of one disk both originals are the same bytes anyway.
  for (let i = prepared.length - 1; i >= 0; i--) {
    try {
      await prepared[i]!.device.write(0, originals[i]!);
      await prepared[i]!.device.flush();
    } catch (error) {
      failure ??= error;
    }
  }
  if (alias) {
    const [i, j] = alias;
    const other = j >= 0 ? `member ${prepared[j]!.uuid}` : 'another device';
    throw new MetadataError('DUPLICATE_DEVICE', `the devices for member ${prepared[i]!.uuid} and ${other} are the same disk`, {
      members: j >= 0 ? [prepared[i]!.uuid, prepared[j]!.uuid] : [prepared[i]!.uuid],
    });
  }
  if (failure !== undefined) throw new MetadataError('IO_ERROR', `probing the new members failed: ${describe(failure)}`, {}, { cause: failure });
}

// ------------------------------------------------------------------ log ring placement

/** Where a batch of `bytes` goes in m's log ring, or undefined when it does not fit. */
function placeBatch(m: StoreMember, bytes: number): number | undefined {
  const size = m.geometry.logBytes;
  if (m.logTail + bytes <= size) return m.logUsed + bytes <= size ? m.logTail : undefined;
  return m.logUsed + (size - m.logTail) + bytes <= size ? 0 : undefined;
}

/** m.logUsed once a batch of `bytes` is placed at `at` (as commitPlacement counts it). */
function usedAfter(m: StoreMember, at: number, bytes: number): number {
  return m.logUsed + (at < m.logTail ? m.geometry.logBytes - m.logTail : 0) + bytes;
}

/** See LOG_HORIZON_STEP_MAX. */
function horizonStep(geometry: MemberGeometry): number {
  return Math.min(LOG_HORIZON_STEP_MAX, Math.max(METADATA_BLOCK, alignDown(geometry.logBytes / 2, METADATA_BLOCK)), geometry.logBytes);
}

function commitPlacement(m: StoreMember, at: number, bytes: number): void {
  if (at < m.logTail) m.logUsed += m.geometry.logBytes - m.logTail;
  m.logUsed += bytes;
  m.logTail = at + bytes;
}

// ------------------------------------------------------------------ I/O helpers

/** `length` bytes at `offset`, in one buffer filled in place (readInto) where the device can. */
async function readRange(device: BlockDevice, offset: number, length: number): Promise<Buffer> {
  if (length <= IO_CHUNK_BYTES && !device.readInto) return device.read(offset, length);
  const out = Buffer.allocUnsafe(length);
  await readInto(device, offset, out);
  return out;
}

/**
 * Fills `target` from `offset` in pieces of at most IO_CHUNK_BYTES: straight
 * into it where the device can (readInto), else with one copy per piece.
 */
async function readInto(device: BlockDevice, offset: number, target: Buffer): Promise<void> {
  for (let at = 0; at < target.length; at += IO_CHUNK_BYTES) {
    const piece = target.subarray(at, Math.min(target.length, at + IO_CHUNK_BYTES));
    if (device.readInto) await device.readInto(offset + at, piece);
    else (await device.read(offset + at, piece.length)).copy(piece);
  }
}

async function writeRange(device: BlockDevice, offset: number, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += IO_CHUNK_BYTES) {
    await device.write(offset + at, data.subarray(at, Math.min(data.length, at + IO_CHUNK_BYTES)));
  }
}

/** m's device; a member taken offline meanwhile fails the sequence like a lost device would. */
function deviceOf(m: StoreMember): BlockDevice {
  if (!m.device) throw new MetadataError('IO_ERROR', `member ${m.uuid} went offline`);
  return m.device;
}

function blankMember(uuid: string, device: BlockDevice | undefined, geometry: MemberGeometry): StoreMember {
  return {
    uuid,
    device,
    geometry,
    isReplica: false,
    inSync: false,
    label: undefined,
    sbAgree: false,
    slot: undefined,
    checkpointGeneration: 0,
    checkpointHash: undefined,
    tipGeneration: 0,
    logHead: 0,
    logTail: 0,
    logUsed: 0,
    logSalt: 0,
    logHorizon: 0,
    rewrite: false,
    relabel: false,
  };
}

/** Records in m what a replica holds on disk. */
function adoptReplica(m: StoreMember, r: LoadedReplica): void {
  Object.assign(m, {
    isReplica: true,
    label: r.label,
    sbAgree: r.sbAgree,
    geometry: r.label.geometry,
    slot: r.label.checkpoint!.slot,
    checkpointGeneration: r.checkpoint.generation,
    checkpointHash: r.checkpoint.hash,
    tipGeneration: r.tipGeneration,
    logHead: r.logHead,
    logTail: r.logTail,
    logUsed: r.logUsed,
    logSalt: r.label.logSalt,
    logHorizon: r.logHorizon,
  });
}

function bySlotSize(a: StoreMember, b: StoreMember): number {
  return b.geometry.checkpointSlotBytes - a.geometry.checkpointSlotBytes;
}

function ioError(uuid: string): (error: unknown) => never {
  return (error) => {
    throw new MetadataError('IO_ERROR', `writing metadata to member ${uuid} failed: ${describe(error)}`, { members: [uuid] }, { cause: error });
  };
}

/** Errors that come from our code, not from a device. */
function isBug(error: unknown): boolean {
  return error instanceof TypeError || error instanceof RangeError || error instanceof ReferenceError;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
