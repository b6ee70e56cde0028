/**
 * The contract between the engine host and its clients (Electron main and
 * preload, the browser-mode bridge, the renderer, the CLI).
 *
 * One file, used by all of them: request names with the schema that validates
 * their parameters at every boundary, the reply type of each, the events the
 * host pushes, and the wire envelope that carries them over the control socket
 * and the browser-mode WebSocket. The renderer imports only its types.
 *
 * Versioning: CONTRACT_VERSION changes when a request or event changes shape
 * incompatibly; a client speaking another version gets VERSION_MISMATCH and
 * nothing else.
 */
import * as v from 'valibot';

export const CONTRACT_VERSION = 1;

/** Largest message (one JSON line) either side accepts, in bytes. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

// ---------------------------------------------------------------------------
// Requests: name → parameter schema. Parameters are always an object so that
// later versions can add optional fields. Sizes and offsets are byte counts
// (integers); clients that take "64M" from people convert before sending.

/** Pool and volume names: what the engine accepts, checked here so the message comes early. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NAME_RULE = "letters, digits, '.', '_' and '-', at most 64, not starting with a symbol";

/** The layouts a volume can be created with; `raid1x3` is a three-way mirror. */
export const VOLUME_LAYOUTS = ['raid0', 'raid1', 'raid1x3', 'raid10', 'raid5', 'raid6'] as const;
export type VolumeLayout = (typeof VOLUME_LAYOUTS)[number];

const name = (what: string) =>
  v.pipe(v.string(`${what} must be a string`), v.regex(NAME_PATTERN, `${what} must be ${NAME_RULE}`));

const byteCount = (what: string, { min = 0, multipleOf = 1 }: { min?: number; multipleOf?: number } = {}) =>
  v.pipe(
    v.number(`${what} must be a number of bytes`),
    v.safeInteger(`${what} must be a whole number of bytes`),
    v.minValue(min, `${what} must be at least ${min} bytes`),
    v.check((n) => n % multipleOf === 0, `${what} must be a multiple of ${multipleOf} bytes`),
  );

/**
 * A member: `file:/ABSOLUTE/PATH`, `nbd+unix:///EXPORT?socket=PATH` or
 * `nbd://HOST[:PORT]/EXPORT`. File paths must be absolute because the engine
 * host's working directory means nothing to the client that sends them.
 */
const memberUri = v.pipe(
  v.string('a member must be a URI string'),
  v.maxLength(4096, 'a member URI must be at most 4096 characters'),
  v.check(
    (uri) => /^(nbd|nbds|nbd\+unix):/.test(uri) || /^file:(\/\/)?\//.test(uri),
    'a member must be file:/ABSOLUTE/PATH, nbd+unix:///EXPORT?socket=PATH or nbd://HOST:PORT/EXPORT',
  ),
);

const memberList = (what: string, min: number) =>
  v.pipe(
    v.array(memberUri, `${what} must be a list of member URIs`),
    v.minLength(min, `${what} must name at least ${min} member${min === 1 ? '' : 's'}`),
    v.maxLength(256, `${what} may name at most 256 members`),
  );

const poolRef = { pool: name('pool') };
/** A member of a pool: its uuid, a unique prefix of it, or its URI. */
const memberRef = v.pipe(v.string('member must be a string'), v.minLength(1, 'member must not be empty'), v.maxLength(4096, 'member is too long'));
const volumeRef = { pool: name('pool'), name: name('volume name') };

/** Job ids are the host's own short strings ("job-12"). */
const jobId = v.pipe(v.string('id must be a job id string'), v.regex(/^[A-Za-z0-9._-]{1,64}$/, 'id must be a job id (letters, digits, ".", "_", "-")'));

/** The reconfigurations a plan (and a job) can be about; `kind` selects one. */
export const PLAN_ACTION_KINDS = ['add', 'remove', 'spare', 'migrate', 'rebalance', 'rebuild', 'scrub'] as const;
export type PlanActionKind = (typeof PLAN_ACTION_KINDS)[number];

const planActionSchema = v.variant(
  'kind',
  [
    /**
     * Add these drives as data members (and rebalance onto them). `force`
     * erases what they hold (another pool's labels, data a disk helper found);
     * a plan without it lists that in `erases` and is refused.
     */
    v.strictObject({ kind: v.literal('add'), members: memberList('members', 1), force: v.optional(v.boolean('force must be true or false')) }),
    /** Evacuate a member and take it out of the pool. */
    v.strictObject({ kind: v.literal('remove'), member: memberRef }),
    /** Make a drive the pool's spare. */
    v.strictObject({ kind: v.literal('spare'), member: memberRef }),
    /** Rewrite a volume in another layout (and width: members per chunk; the layout's default for the pool when omitted). */
    v.strictObject({
      kind: v.literal('migrate'),
      volume: name('volume'),
      layout: v.picklist(VOLUME_LAYOUTS, `layout must be one of ${VOLUME_LAYOUTS.join(', ')}`),
      width: v.optional(v.pipe(v.number('width must be a number'), v.safeInteger('width must be a whole number'), v.minValue(1, 'width must be at least 1'), v.maxValue(257, 'width must be at most 257'))),
    }),
    /** Even out how full the members are. */
    v.strictObject({ kind: v.literal('rebalance') }),
    /**
     * Get redundancy back after a member failed: onto `spare` when given,
     * else the engine's recommendation (the spare first, else relocate or
     * split into free space).
     */
    v.strictObject({ kind: v.literal('rebuild'), spare: v.optional(memberRef) }),
    /** Read every block of one volume (or all), check checksums and parity, repair what is bad from good copies. */
    v.strictObject({ kind: v.literal('scrub'), volume: v.optional(name('volume')) }),
  ],
  `action.kind must be one of ${PLAN_ACTION_KINDS.join(', ')}`,
);
export type PlanAction = v.InferOutput<typeof planActionSchema>;

/** The smallest and largest latency budgets a pool takes (factors of the idle p99 latency). */
export const LATENCY_BUDGET_MIN = 1.1;
export const LATENCY_BUDGET_MAX = 10;

const poolPolicySchema = v.strictObject({
  /**
   * Repair by itself when a member holding data fails: rebuild onto the
   * spare, else relocate into free space on one member, else split it over
   * several. When none fits, the member waits for a person.
   */
  autoRepair: v.optional(v.boolean('autoRepair must be true or false')),
  /**
   * How much background jobs may slow foreground I/O: while a job runs, the
   * foreground p99 latency may be up to this many times the idle p99
   * (LATENCY_BUDGET_MIN–LATENCY_BUDGET_MAX); the engine slows the job to
   * keep it there. Default 2.
   */
  latencyBudget: v.optional(
    v.pipe(
      v.number('latencyBudget must be a number'),
      v.minValue(LATENCY_BUDGET_MIN, `latencyBudget must be at least ${LATENCY_BUDGET_MIN}`),
      v.maxValue(LATENCY_BUDGET_MAX, `latencyBudget must be at most ${LATENCY_BUDGET_MAX}`),
    ),
  ),
});
export type PoolPolicy = Required<v.InferOutput<typeof poolPolicySchema>>;

export const requestSchemas = {
  /** The engine host's version and uptime. */
  version: v.strictObject({}),
  /** Stop the engine host cleanly (CLI `spindle stop`, tests). */
  shutdown: v.strictObject({}),

  /** Creates a pool on new members (their contents are lost). `demo` allows simulated corruption. */
  'pool-create': v.strictObject({
    name: name('pool name'),
    members: memberList('members', 1),
    spares: v.optional(memberList('spares', 0)),
    /** Bytes per slab (each member is cut into slabs); a multiple of 4 KiB. Default 256 MiB. */
    slabSize: v.optional(byteCount('slabSize', { min: 1024 * 1024, multipleOf: 4096 })),
    demo: v.optional(v.boolean('demo must be true or false')),
    /** Take members labelled for another pool. */
    force: v.optional(v.boolean('force must be true or false')),
  }),
  /** Imports the pool found on these members (any subset that holds its metadata). */
  'pool-import': v.strictObject({
    members: memberList('members', 1),
    demo: v.optional(v.boolean('demo must be true or false')),
  }),
  /** Flushes and closes a pool, removes its exports, and forgets it (its members keep it). */
  'pool-export': v.strictObject(poolRef),
  'pool-list': v.strictObject({}),
  'pool-status': v.strictObject(poolRef),
  'volume-create': v.strictObject({
    ...volumeRef,
    size: byteCount('size', { min: 512, multipleOf: 512 }),
    layout: v.picklist(VOLUME_LAYOUTS, `layout must be one of ${VOLUME_LAYOUTS.join(', ')}`),
    /** Members per chunk; the layout's default for the pool when omitted. */
    width: v.optional(v.pipe(v.number('width must be a number'), v.safeInteger('width must be a whole number'), v.minValue(1, 'width must be at least 1'), v.maxValue(257, 'width must be at most 257'))),
  }),
  'volume-delete': v.strictObject(volumeRef),
  /** Grows a volume to `size` bytes; an exported volume is re-exported (clients reconnect to see the size). */
  'volume-grow': v.strictObject({ ...volumeRef, size: byteCount('size', { min: 512, multipleOf: 512 }) }),
  /** Serves a volume over NBD on the engine host's Unix socket, and on 127.0.0.1:tcpPort when given (0 picks a port). */
  'volume-export': v.strictObject({
    ...volumeRef,
    tcpPort: v.optional(v.pipe(v.number('tcpPort must be a number'), v.safeInteger('tcpPort must be a whole number'), v.minValue(0, 'tcpPort must be 0 to 65535'), v.maxValue(65535, 'tcpPort must be 0 to 65535'))),
  }),
  'volume-unexport': v.strictObject(volumeRef),
  /**
   * A volume and its layout map. The map is paged so that a reply stays far
   * below MAX_MESSAGE_BYTES: it starts at chunk index `firstChunk` and stops
   * after about 4096 columns; `nextChunk` says where to go on.
   */
  'volume-status': v.strictObject({
    ...volumeRef,
    firstChunk: v.optional(v.pipe(v.number('firstChunk must be a number'), v.safeInteger('firstChunk must be a whole number'), v.minValue(0, 'firstChunk must be at least 0'))),
  }),
  /**
   * Marks a member failed, as if its disk died (any pool, like `mdadm --fail`:
   * a way to take a suspect disk out of use). `member`: uuid, unique uuid prefix, or URI.
   */
  'member-fail': v.strictObject({ ...poolRef, member: memberRef }),
  /** Brings a failed or missing member back (reopens its URI) and rebuilds what it missed. */
  'member-restore': v.strictObject({ ...poolRef, member: memberRef }),
  /** Demo and test pools only: flips bytes of one copy of the block holding `offset`, behind the engine's back. */
  'volume-corrupt': v.strictObject({ ...volumeRef, offset: byteCount('offset') }),
  /** Creates (once) the demo pool of image files in the state directory; reports the existing one after. */
  'demo-create': v.strictObject({}),

  // --- Drives, reconfiguration, plans and jobs (issue 8's additions) ------
  // Every reconfiguration is first a `plan` (nothing changes), then a
  // `job-start` with the same action; the job reports through `job-progress`
  // and `job-finished`. Reconfigurations that move data are jobs; naming a
  // spare or a policy is immediate.

  /** Every drive the host can see: pool members, spares, and unassigned drives from the helper's inventory. */
  'drives-list': v.strictObject({}),
  /** Adds drives to a pool as data members (their contents are lost); data moves onto them only through a rebalance job. */
  'pool-add-member': v.strictObject({ ...poolRef, members: memberList('members', 1), force: v.optional(v.boolean('force must be true or false')) }),
  /** Starts an evacuate job that moves every slab off the member, then removes it from the pool. */
  'pool-remove-member': v.strictObject({ ...poolRef, member: memberRef }),
  /**
   * Makes a drive the pool's spare (`spare: true`): a member of the pool
   * (uuid, prefix or URI; it must hold no data) or a new drive (URI). With
   * `spare: false` the spare leaves the pool.
   */
  'pool-set-spare': v.strictObject({ ...poolRef, member: memberRef, spare: v.boolean('spare must be true or false') }),
  /** Changes how the pool looks after itself; fields left out keep their value. */
  'pool-set-policy': v.strictObject({ ...poolRef, policy: poolPolicySchema }),
  /** What an action would do, without doing it. An impossible action is a plan with `possible: false` and the reason, not an error. */
  plan: v.strictObject({ ...poolRef, action: planActionSchema }),
  /** Starts the job for an action (the same action `plan` was asked about). */
  'job-start': v.strictObject({ ...poolRef, action: planActionSchema }),
  /** Running, paused and recently finished jobs, of one pool or all. */
  'job-list': v.strictObject({ pool: v.optional(name('pool')) }),
  'job-pause': v.strictObject({ id: jobId }),
  'job-resume': v.strictObject({ id: jobId }),
  'job-cancel': v.strictObject({ id: jobId }),
} as const;

export type RequestName = keyof typeof requestSchemas;
export type RequestParams<N extends RequestName> = v.InferOutput<(typeof requestSchemas)[N]>;

export interface VersionInfo {
  /** Spindle's package version. */
  readonly version: string;
  readonly contractVersion: number;
  readonly pid: number;
  /** Milliseconds since the engine host started. */
  readonly uptimeMs: number;
  /** ISO 8601 time the engine host started. */
  readonly startedAt: string;
  readonly nodeVersion: string;
}

/** `unavailable`: the host knows the pool but could not import it (see `problem`). */
export type PoolHealth = 'online' | 'degraded' | 'failed' | 'unavailable';
export type MemberState = 'online' | 'resyncing' | 'failed' | 'missing';
export type VolumeState = 'online' | 'degraded' | 'failed';

export interface ErrorCounts {
  readonly read: number;
  readonly write: number;
  readonly checksum: number;
}

export interface PoolSummary {
  readonly name: string;
  readonly uuid: string;
  readonly health: PoolHealth;
  /** Demo or test pool: simulated corruption is allowed. */
  readonly demo: boolean;
  readonly memberCount: number;
  readonly volumeCount: number;
  /** Why the pool is unavailable or unhealthy, for people. */
  readonly problem?: string;
}

export interface MemberStatus {
  readonly uuid: string;
  readonly uri: string;
  readonly role: 'data' | 'spare';
  readonly state: MemberState;
  readonly errors: ErrorCounts;
  readonly slabCount: number;
  readonly freeSlabs: number;
  /** Why it failed, when it did. */
  readonly reason?: string;
}

export interface VolumeExport {
  /** NBD export name: POOL/VOLUME. */
  readonly exportName: string;
  /** nbd+unix:///POOL/VOLUME?socket=… */
  readonly uri: string;
  readonly socket: string;
  /** nbd://127.0.0.1:PORT/POOL/VOLUME, when exported on TCP too. */
  readonly tcpUri?: string;
  readonly tcpPort?: number;
}

export interface VolumeSummary {
  readonly pool: string;
  readonly name: string;
  readonly size: number;
  /** The layout as it was asked for (raid1x3 for a three-way mirror). */
  readonly layout: string;
  readonly width: number;
  readonly copies: number;
  readonly state: VolumeState;
  readonly export?: VolumeExport;
}

export interface PoolStatus extends PoolSummary {
  /** Bytes per slab on disk, and of user data per slab (the rest is its checksum table). */
  readonly slabSize: number;
  readonly slabDataBytes: number;
  readonly members: readonly MemberStatus[];
  readonly volumes: readonly VolumeSummary[];
  /** Bytes a new volume of each layout could still get. */
  readonly freeSpace: Readonly<Record<VolumeLayout, number>>;
  readonly policy: PoolPolicy;
}

export type ColumnRole = 'data' | 'copy' | 'parity-p' | 'parity-q';

export interface ChunkColumnStatus {
  /** Member uuid. */
  readonly member: string;
  readonly slab: number;
  /** What the column holds in row 0 (parity rotates from row to row). */
  readonly role: ColumnRole;
  readonly state: MemberState;
}

export interface ChunkStatus {
  readonly id: number;
  /** Bytes of the volume this chunk holds. */
  readonly capacity: number;
  readonly columns: readonly ChunkColumnStatus[];
}

export interface VolumeStatus extends VolumeSummary {
  readonly chunkCount: number;
  readonly firstChunk: number;
  readonly chunks: readonly ChunkStatus[];
  /** Index of the next page of the map, when there is one. */
  readonly nextChunk?: number;
}

export interface MemberRestored {
  readonly pool: string;
  readonly member: MemberStatus;
  /** Rows rebuilt onto it (the writes it missed). */
  readonly rowsRebuilt: number;
}

export interface CorruptionDone {
  readonly pool: string;
  readonly volume: string;
  readonly offset: number;
  /** The member and slab whose copy was damaged, and where on the device. */
  readonly member: string;
  readonly slab: number;
  readonly deviceOffset: number;
  readonly bytes: number;
}

// --- Drives, plans and jobs -------------------------------------------------

/** `degraded`: in use with errors; `failing`: SMART predicts failure. */
export type DriveState = 'online' | 'degraded' | 'failing' | 'failed' | 'missing';

/** The helper's SMART report (native-helpers/smart.ts), summarised. */
export interface SmartSummary {
  /** The drive's own overall assessment; `warning`: passed, but with warnings (reallocations, self-test failures…). */
  readonly verdict: 'passed' | 'warning' | 'failed' | 'unknown';
  readonly temperatureC: number | null;
  readonly reallocated: number | null;
  readonly pending: number | null;
  readonly uncorrectable: number | null;
  readonly powerOnHours: number | null;
  /** The helper's warnings, for people. */
  readonly warnings: readonly string[];
}

export interface Drive {
  /** Stable across restarts: the disk's WWN or serial, or the image path. */
  readonly id: string;
  /** /dev/disk/by-id/… for disks, the file path for images, the URI for remote drives. */
  readonly path: string;
  /** What to pass as a member to pool-create, pool-add-member or pool-set-spare. */
  readonly uri: string;
  /** Null where the drive does not say (image files, some USB bridges). */
  readonly model: string | null;
  readonly serial: string | null;
  readonly size: number;
  readonly rotational: boolean;
  /** lsblk's transport (sata, sas, nvme, usb…), `file` for image files, `nbd` for remote drives; null when unknown. */
  readonly transport: string | null;
  readonly state: DriveState;
  /** Null where the drive has no SMART (image files, remote drives, some USB bridges). */
  readonly smart: SmartSummary | null;
  /** The pool it belongs to and its role there; null for an unassigned drive. */
  readonly poolName: string | null;
  readonly role: 'data' | 'spare' | null;
  /** The member uuid, when it belongs to a pool. */
  readonly memberUuid: string | null;
  /** Why it cannot be used (mounted, the system disk…), for unassigned drives that cannot. */
  readonly unusableReason?: string;
}

/** How many member failures the pool's data would survive, and in words. */
export interface Redundancy {
  readonly failuresTolerated: number;
  readonly description: string;
}

export interface PlanMemberSpace {
  /** Member uuid, or the URI of a drive that is not a member yet. */
  readonly member: string;
  readonly uri: string;
  readonly before: { readonly usedBytes: number; readonly freeBytes: number };
  readonly after: { readonly usedBytes: number; readonly freeBytes: number };
}

export interface Plan {
  readonly pool: string;
  readonly action: PlanAction;
  readonly possible: boolean;
  /** Why not, when it is not possible. */
  readonly reason?: string;
  /** For people: "Rebuild onto the spare disk5", "Relocate into free space on 3 members"… */
  readonly summary: string;
  /** Bytes the job copies to new places; for a scrub, the bytes it reads and checks. */
  readonly bytesToMove: number;
  readonly perMember: readonly PlanMemberSpace[];
  readonly redundancyDuring: Redundancy;
  readonly redundancyAfter: Redundancy;
  readonly estimatedSeconds: number;
  /** How long the data is less redundant than it will be after. */
  readonly riskWindowSeconds: number;
  /** What else people should know ("the estimate uses a default rate: no job has run on this pool yet"). */
  readonly notes?: readonly string[];
  /**
   * What doing this destroys, one line a drive ("disk7 holds member … of
   * another Spindle pool"). A plan refused only for these becomes possible
   * when asked again with the action's `force`.
   */
  readonly erases?: readonly string[];
}

/**
 * What a job does. `spare` is not an engine job: naming a spare is
 * immediate; job-start for a `spare` action answers with a job already done,
 * so that every started action has a job to show.
 */
export type JobKind = 'rebuild' | 'relocate' | 'split' | 'evacuate' | 'rebalance' | 'migrate' | 'scrub' | 'spare';
export type JobState = 'queued' | 'running' | 'paused' | 'done' | 'cancelled' | 'failed';

export interface JobProgress {
  readonly id: string;
  readonly pool: string;
  readonly kind: JobKind;
  readonly state: JobState;
  /** For people: "Rebuild onto disk5". */
  readonly title: string;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** Bytes per second over the last few seconds. */
  readonly rate: number;
  /** Null while unknown (just started, paused). */
  readonly etaSeconds: number | null;
  /**
   * The job is held back so that foreground I/O keeps its latency (the
   * pool's latency budget): its rate, and so its time left, follow the
   * foreground's load.
   */
  readonly heldBack: boolean;
}

export interface BadBlockRepair {
  readonly volume: string;
  /** Byte offset in the volume. */
  readonly offset: number;
  readonly bytes: number;
  /** The member uuid whose copy was bad. */
  readonly member: string;
  /** Where the good data came from: "copy on <uuid>" or "parity of row N"; "nothing valid was left" for a lost block. */
  readonly repairedFrom: string;
}

export interface JobReport {
  /** Bytes copied to new places (slab moves, a migrate's rewrite); 0 for a scrub. */
  readonly movedBytes: number;
  /** Bytes read and checked, for a scrub. */
  readonly checkedBytes?: number;
  readonly elapsedSeconds: number;
  /** The first 1000 bad blocks found; blocksRepaired and blocksLost count them all. */
  readonly badBlocks: readonly BadBlockRepair[];
  readonly blocksRepaired?: number;
  /** Blocks for which no valid copy was left: they read as errors. */
  readonly blocksLost?: number;
  /** Members the job took out of the pool (uuid). */
  readonly membersRemoved?: readonly string[];
  readonly notes?: readonly string[];
  /** Why it failed, when it did. */
  readonly error?: string;
}

export interface JobSummary extends JobProgress {
  readonly action: PlanAction;
  /** ISO 8601. */
  readonly startedAt: string;
  readonly finishedAt?: string;
  readonly report?: JobReport;
}

export interface DemoCreated {
  /** False when the demo pool already existed (or was imported from its images). */
  readonly created: boolean;
  readonly pool: PoolStatus;
  /** The pool's image files. */
  readonly images: readonly string[];
  /** Image files beside them that no pool used when the demo was made: drives to try adding. */
  readonly unassigned: readonly string[];
}

export interface Replies {
  version: VersionInfo;
  shutdown: { readonly stopping: true };
  'pool-create': PoolStatus;
  'pool-import': PoolStatus & {
    /** Devices given that are not members of this pool, with the reason. */
    readonly unrecognized: ReadonlyArray<{ readonly uri: string; readonly reason: string }>;
  };
  'pool-export': { readonly pool: string; readonly exported: true };
  'pool-list': { readonly pools: readonly PoolSummary[] };
  'pool-status': PoolStatus;
  'volume-create': VolumeSummary;
  'volume-delete': { readonly pool: string; readonly name: string; readonly deleted: true };
  'volume-grow': VolumeSummary;
  'volume-export': VolumeSummary & { readonly export: VolumeExport };
  'volume-unexport': { readonly pool: string; readonly name: string; readonly wasExported: boolean };
  'volume-status': VolumeStatus;
  'member-fail': { readonly pool: string; readonly member: MemberStatus };
  'member-restore': MemberRestored;
  'volume-corrupt': CorruptionDone;
  'demo-create': DemoCreated;
  'drives-list': { readonly drives: readonly Drive[] };
  'pool-add-member': PoolStatus;
  'pool-remove-member': JobSummary;
  'pool-set-spare': PoolStatus;
  'pool-set-policy': PoolStatus & { readonly policy: PoolPolicy };
  plan: Plan;
  'job-start': JobSummary;
  'job-list': { readonly jobs: readonly JobSummary[] };
  'job-pause': JobSummary;
  'job-resume': JobSummary;
  'job-cancel': JobSummary;
}

// ---------------------------------------------------------------------------
// Events the host pushes to every connected client.

export interface EngineStatus {
  readonly uptimeMs: number;
  readonly startedAt: string;
  readonly version: string;
}

export interface Events {
  /** Once a second, and right after a client connects. */
  'engine-status': EngineStatus;
  'member-state': { readonly pool: string; readonly member: MemberStatus };
  /** A member's error counters went up; at most 10 a second per member (the latest counts win). */
  'member-errors': { readonly pool: string; readonly member: string; readonly errors: ErrorCounts };
  'volume-state': { readonly pool: string; readonly volume: string; readonly state: VolumeState };
  'log': { readonly level: 'info' | 'warn' | 'error'; readonly message: string; readonly pool?: string };
  /** A pool was created, imported or exported, became (un)available, or gained or lost a volume. */
  'pool-list-changed': { readonly pools: readonly PoolSummary[] };
  /** A job moved on or changed state; at most 10 a second per job (the latest wins). */
  'job-progress': JobProgress;
  /** A job ended (done, cancelled or failed), with its report. */
  'job-finished': JobSummary & { readonly report: JobReport };
  /** Each member's I/O rate, once a second while the pool is open and a client is connected (bytes per second, all causes). */
  'member-io-rate': { readonly pool: string; readonly member: string; readonly readBytesPerSec: number; readonly writeBytesPerSec: number };
}

export type EventName = keyof Events;
export const EVENT_NAMES: readonly EventName[] = [
  'engine-status',
  'member-state',
  'member-errors',
  'volume-state',
  'log',
  'pool-list-changed',
  'job-progress',
  'job-finished',
  'member-io-rate',
];

// ---------------------------------------------------------------------------
// What the renderer sees as `window.spindle` (Electron preload or browser-mode
// bridge alike).

export interface SpindleApi {
  request<N extends RequestName>(method: N, params: RequestParams<N>): Promise<Replies[N]>;
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends EventName>(event: E, listener: (data: Events[E]) => void): () => void;
}

// ---------------------------------------------------------------------------
// Wire envelope (newline-delimited JSON on the control socket, one JSON text
// per WebSocket message in browser mode).

export type ErrorCode =
  | 'BAD_MESSAGE' // not JSON, or not an envelope
  | 'VERSION_MISMATCH'
  | 'UNKNOWN_METHOD'
  | 'INVALID_PARAMS'
  | 'TOO_LARGE'
  | 'FAILED' // the request was valid but could not be done; message says why
  | 'INTERNAL'
  | 'DISCONNECTED';

export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
}

export const requestEnvelopeSchema = v.strictObject({
  type: v.literal('request'),
  version: v.pipe(v.number(), v.integer()),
  id: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)),
  method: v.pipe(v.string(), v.maxLength(100)),
  params: v.optional(v.unknown()),
});

export type RequestEnvelope = v.InferOutput<typeof requestEnvelopeSchema>;

export type ReplyEnvelope =
  | { readonly type: 'reply'; readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly type: 'reply'; readonly id: number | null; readonly ok: false; readonly error: WireError };

export interface EventEnvelope<E extends EventName = EventName> {
  readonly type: 'event';
  readonly event: E;
  readonly data: Events[E];
}

export type ServerMessage = ReplyEnvelope | EventEnvelope;

export function isRequestName(name: string): name is RequestName {
  return Object.prototype.hasOwnProperty.call(requestSchemas, name);
}

/** The error a client raises for an error reply. */
export class ContractError extends Error {
  readonly code: ErrorCode;
  constructor(error: WireError) {
    super(error.message);
    this.name = 'ContractError';
    this.code = error.code;
  }
}

/**
 * Validates a request envelope and its parameters. Returns the typed request
 * or the error reply to send; never throws.
 */
export function parseRequest(
  raw: unknown,
): { ok: true; id: number; method: RequestName; params: unknown } | { ok: false; id: number | null; error: WireError } {
  const id = typeof raw === 'object' && raw !== null && Number.isSafeInteger((raw as { id?: unknown }).id)
    ? ((raw as { id: number }).id)
    : null;
  const envelope = v.safeParse(requestEnvelopeSchema, raw);
  if (!envelope.success) {
    return { ok: false, id, error: { code: 'BAD_MESSAGE', message: `malformed request: ${describeIssues(envelope.issues)}` } };
  }
  const { version, method, params } = envelope.output;
  if (version !== CONTRACT_VERSION) {
    return {
      ok: false,
      id,
      error: { code: 'VERSION_MISMATCH', message: `contract version ${version} is not supported; this engine host speaks version ${CONTRACT_VERSION}` },
    };
  }
  if (!isRequestName(method)) {
    return { ok: false, id, error: { code: 'UNKNOWN_METHOD', message: `unknown request "${method}"` } };
  }
  const parsed = v.safeParse(requestSchemas[method], params ?? {});
  if (!parsed.success) {
    return { ok: false, id, error: { code: 'INVALID_PARAMS', message: `invalid parameters for "${method}": ${describeIssues(parsed.issues)}` } };
  }
  return { ok: true, id: envelope.output.id, method, params: parsed.output };
}

function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .slice(0, 3)
    .map((issue) => {
      const path = v.getDotPath(issue);
      // valibot's wording for object keys ("Invalid key: Expected never…") says less than this.
      const message =
        issue.type === 'strict_object' && issue.expected === 'never'
          ? 'unknown parameter'
          : (issue.type === 'object' || issue.type === 'strict_object') && issue.input === undefined && path
            ? 'required'
            : issue.message;
      return path ? `${path}: ${message}` : message;
    })
    .join('; ');
}
