/**
 * scrub: reads every block of one volume (or all), on every copy and
 * parity column, verifies each against its checksum and parity against the
 * data, and repairs what is wrong (ChunkIo.scrubRows, then repairRow). The
 * report lists each bad block and where its good data came from.
 *
 * Resumable: the cursor (volume, chunk, row) is logged at each checkpoint;
 * a scrub resumed after a restart goes on from there. It moves nothing, so
 * there is nothing to undo on cancel.
 */
import { STRIPE_UNIT } from './layout.js';
import { account, batchDepth, batchRows, claimsFor, memberSpace, redundancy } from './job-moves.js';
import { JobError, type JobHost, type JobKindModule } from './job-types.js';
import { withLocks } from './slab-move.js';
import { formatSize } from './units.js';

interface Params {
  readonly volumes: readonly string[];
}

interface Cursor {
  readonly volume: number;
  readonly chunk: number;
  readonly row: number;
}

/** Bytes a scrub reads: every column of every row. */
function bytesOf(host: JobHost, volumes: readonly string[]): number {
  let bytes = 0;
  for (const name of volumes) {
    for (const chunk of host.volumeChunks(name)) bytes += chunk.rows * STRIPE_UNIT * chunk.columns.length;
  }
  return bytes;
}

export const scrub: JobKindModule = {
  kind: 'scrub',
  priority: 4,

  prepare(host, request) {
    if (request.kind !== 'scrub') throw new JobError('BAD_REQUEST', 'not a scrub request');
    const pool = host.pool;
    let volumes: string[];
    if (request.volume !== undefined) {
      if (!pool.volumeNames().includes(request.volume)) throw new JobError('NOT_FOUND', `pool ${pool.name} has no volume "${request.volume}"`);
      volumes = [request.volume];
    } else {
      volumes = pool.volumeNames();
      if (volumes.length === 0) throw new JobError('NOTHING_TO_DO', `pool ${pool.name} has no volume to scrub`);
    }
    for (const v of volumes) {
      if (pool.volumeState(v) === 'failed') throw new JobError('VOLUME_FAILED', `volume ${v} has failed: more of its members are lost than its layout survives, so it cannot be scrubbed`);
    }
    return { volumes };
  },

  plan(host, raw) {
    const p = raw as unknown as Params;
    const bytes = bytesOf(host, p.volumes);
    const chunks = p.volumes.flatMap((v) => host.volumeChunks(v).map((c) => c.id));
    const red = redundancy(host, chunks, (uuid) => !(host.pool.members.get(uuid)?.usable ?? false));
    const degraded = red.filter((r) => r.now < r.after || host.pool.volumeState(r.volume) === 'degraded');
    return {
      kind: 'scrub',
      summary: `scrub ${p.volumes.length === 1 ? `volume ${p.volumes[0]}` : `${p.volumes.length} volumes`} (${formatSize(bytes)} to read)`,
      bytes,
      slabs: 0,
      members: memberSpace(host, new Map()),
      redundancy: red,
      belowFullRedundancy: false,
      notes: degraded.length > 0 ? [`columns on members that are not online cannot be checked (${degraded.map((r) => r.volume).join(', ')})`] : [],
    };
  },

  claims(host, raw) {
    const p = raw as unknown as Params;
    return claimsFor(host, p.volumes.flatMap((v) => host.pool.state.volumes.find((i) => i.name === v)?.chunks ?? []), []);
  },

  async run(ctx, raw) {
    const p = raw as unknown as Params;
    const { host } = ctx;
    const start = (ctx.info().cursor as Cursor | undefined) ?? { volume: 0, chunk: 0, row: 0 };
    // Bytes already done come from the tally; the total is done + what is left from the cursor.
    let left = 0;
    p.volumes.forEach((name, v) => {
      if (v < start.volume || !host.pool.volumeNames().includes(name)) return;
      host.volumeChunks(name).forEach((chunk, c) => {
        const from = v === start.volume && c === start.chunk ? start.row : v === start.volume && c < start.chunk ? chunk.rows : 0;
        left += (chunk.rows - from) * STRIPE_UNIT * chunk.columns.length;
      });
    });
    ctx.setTotal(ctx.tally().bytes + left);
    let lastCheckpoint = performance.now();
    let unchecked = 0;
    // A few batches at once (each under its own rows' locks), oldest first: the checkpoint's
    // cursor is the oldest batch still running, below which everything is verified.
    // Bytes are counted when the oldest batch is taken off the queue, so the tally is always
    // what lies before the cursor, and a resumed scrub counts nothing twice.
    const inflight: Array<{ at: Cursor; bytes: number; done: Promise<void> }> = [];
    let failure: unknown;
    const settleOldest = async (): Promise<void> => {
      const oldest = inflight[0]!;
      await oldest.done;
      inflight.shift();
      if (failure === undefined) ctx.advance(oldest.bytes);
    };
    try {
      for (let v = start.volume; v < p.volumes.length && failure === undefined; v++) {
        const name = p.volumes[v]!;
        if (!host.pool.volumeNames().includes(name)) continue;
        const chunks = host.volumeChunks(name);
        for (let c = v === start.volume ? start.chunk : 0; c < chunks.length && failure === undefined; c++) {
          const chunk = chunks[c]!;
          let row = v === start.volume && c === start.chunk ? start.row : 0;
          while (row < chunk.rows && failure === undefined) {
            while (inflight.length >= batchDepth(ctx)) await settleOldest();
            const count = Math.min(batchRows(ctx), chunk.rows - row);
            const bytes = count * STRIPE_UNIT * chunk.columns.length;
            await ctx.admit(bytes);
            const first = row;
            const keys = Array.from({ length: count }, (_, i) => `${chunk.id}:${first + i}`);
            const done = withLocks(host, keys, () => chunk.scrubRows(first, count)).then(
              (result) => {
                account(ctx, { bad: result.bad, lost: result.bad.filter((b) => b.from === undefined).length });
                unchecked += result.unchecked;
              },
              (error: unknown) => {
                failure ??= error;
              },
            );
            inflight.push({ at: { volume: v, chunk: c, row: first }, bytes, done });
            row += count;
            if (performance.now() - lastCheckpoint >= ctx.tuning.checkpointMs) {
              const cursor: Cursor = inflight[0]?.at ?? { volume: v, chunk: c, row };
              lastCheckpoint = performance.now();
              await ctx.checkpoint({ cursor });
            }
          }
        }
      }
      while (inflight.length > 0 && failure === undefined) await settleOldest();
    } finally {
      await Promise.allSettled(inflight.map((b) => b.done));
    }
    if (failure !== undefined) throw failure;
    if (unchecked > 0) ctx.note(`${formatSize(unchecked)} could not be checked: it is on members that are not online`);
    const repaired = ctx.tally().blocksRepaired;
    ctx.note(repaired === 0 && ctx.tally().blocksLost === 0 ? 'no bad block found' : `${repaired} bad block(s) repaired, ${ctx.tally().blocksLost} lost`);
  },
};
