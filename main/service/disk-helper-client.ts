/**
 * DiskHelperClient: starts the privileged disk helper (native-helpers/) and
 * talks its protocol (native-helpers/helper-protocol.ts): JSON lines on the
 * helper's stdin and stdout.
 *
 * The helper is the only part of Spindle that opens real disks. It lists
 * them, reads SMART, and serves the disks the user chose over NBD on a Unix
 * socket that only this user can reach; a served disk becomes a pool member
 * through its `uri` (`nbd+unix:///EXPORT?socket=PATH`, for
 * engine/member-uri.ts's openMember and pool-open.ts's createPool).
 *
 * API
 *
 *   const helper = await DiskHelperClient.start(launch?)   // resolves on the helper's "ready"
 *     launch = helperLaunch('source')   development: node --import tsx native-helpers/helper-main.ts (default)
 *            | helperLaunch('built')    node dist/native-helpers/helper-main.js
 *            | helperLaunch('pkexec')   production: pkexec INSTALLED_HELPER (polkit action
 *                                       dev.spindle.app.disk-helper, auth_admin_keep)
 *   helper.socket / helper.pid / helper.elevated
 *   await helper.list()            → HelperDisk[]  whole disks; `id` names a disk in every other call,
 *                                   `refusal` says why it cannot be served (null: it can), `signatures`
 *                                   non-empty means serving needs confirmExistingData
 *   await helper.smart(id)         → SmartReport   verdict, temperature, sector counts, self-tests
 *   await helper.serve(id, { confirmExistingData })
 *                                  → ServedDisk    { disk, path, size, exportName, socket, uri }
 *   await helper.stop(id)          stops serving: open NBD connections close (the engine marks the member failed)
 *   await helper.served()          → ServedDisk[]
 *   helper.on('disk-added' | 'disk-removed' | 'disk-changed', (e: DiskEvent) => …)
 *   helper.on('served-disk-lost', (e: ServedDiskLost) => …)   a served disk vanished or changed: no longer served
 *   helper.on('exit', (e: { code: number | null; signal: string | null }) => …)
 *   await helper.close()           the helper stops serving everything and exits
 *
 * Every failed request rejects with DiskHelperError, whose `code` is the
 * helper's (NOT_IN_INVENTORY, REFUSED_SYSTEM_DISK, REFUSED_MOUNTED,
 * REFUSED_HELD, REFUSED_BUSY, ALREADY_SERVED, NEEDS_CONFIRMATION, …) and
 * whose message is one line for people. If the helper exits, pending and
 * later requests reject with code HELPER_EXITED.
 *
 * Replies are validated here rather than imported from native-helpers (the
 * service layer may not import the helper's code); the tests run the real
 * helper, which keeps the two sides in step.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as v from 'valibot';
import { LineFramer } from './line-framer.js';

/** Where the deb package installs the helper's launcher (packaging/linux/spindle-disk-helper). */
export const INSTALLED_HELPER = '/opt/Spindle/resources/helper/spindle-disk-helper';

const REPO_ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
/** Built code runs from dist/main/service: the repository is one more level up. */
const ROOT = REPO_ROOT.endsWith(`${join('/', 'dist')}`) ? join(REPO_ROOT, '..') : REPO_ROOT;

export interface HelperLaunch {
  readonly command: string;
  readonly args: readonly string[];
  /** Extra environment (pkexec discards it, so it only matters unprivileged). */
  readonly env?: Readonly<Record<string, string>>;
}

/** How to start the helper: from source or built code as the current user, or elevated through pkexec. */
export function helperLaunch(mode: 'source' | 'built' | 'pkexec', options: { helperPath?: string; env?: Record<string, string> } = {}): HelperLaunch {
  switch (mode) {
    case 'source':
      return { command: process.execPath, args: ['--import', 'tsx', join(ROOT, 'native-helpers', 'helper-main.ts')], env: options.env };
    case 'built':
      return { command: process.execPath, args: [join(ROOT, 'dist', 'native-helpers', 'helper-main.js')], env: options.env };
    case 'pkexec':
      return { command: 'pkexec', args: [options.helperPath ?? INSTALLED_HELPER] };
  }
}

export class DiskHelperError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'DiskHelperError';
  }
}

const servedDiskSchema = v.object({
  disk: v.string(),
  path: v.string(),
  size: v.number(),
  exportName: v.string(),
  socket: v.string(),
  uri: v.string(),
});
export type ServedDisk = v.InferOutput<typeof servedDiskSchema>;

const diskSchema = v.looseObject({
  id: v.nullable(v.string()),
  path: v.string(),
  name: v.string(),
  type: v.string(),
  size: v.number(),
  model: v.nullable(v.string()),
  serial: v.nullable(v.string()),
  rotational: v.boolean(),
  transport: v.nullable(v.string()),
  mountPoints: v.array(v.string()),
  isSystemDisk: v.boolean(),
  holders: v.array(v.string()),
  signatures: v.array(v.string()),
  byIdPaths: v.array(v.string()),
  backingFile: v.nullable(v.string()),
  served: v.boolean(),
  refusal: v.nullable(v.string()),
});
export type HelperDisk = v.InferOutput<typeof diskSchema>;

const smartSchema = v.looseObject({
  available: v.boolean(),
  reason: v.nullable(v.string()),
  protocol: v.nullable(v.string()),
  model: v.nullable(v.string()),
  serial: v.nullable(v.string()),
  verdict: v.picklist(['passed', 'failed', 'unknown']),
  temperatureC: v.nullable(v.number()),
  powerOnHours: v.nullable(v.number()),
  reallocatedSectors: v.nullable(v.number()),
  pendingSectors: v.nullable(v.number()),
  uncorrectableErrors: v.nullable(v.number()),
  selfTests: v.array(v.object({ type: v.string(), passed: v.boolean(), status: v.string(), lifetimeHours: v.nullable(v.number()) })),
  warnings: v.array(v.string()),
});
export type SmartReport = v.InferOutput<typeof smartSchema>;

const replySchema = v.union([
  v.object({ id: v.nullable(v.number()), ok: v.literal(true), result: v.unknown() }),
  v.object({ id: v.nullable(v.number()), ok: v.literal(false), error: v.object({ code: v.string(), message: v.string() }) }),
]);

const diskEventSchema = v.object({
  disk: v.object({ id: v.nullable(v.string()), path: v.string(), name: v.string(), size: v.number() }),
  sizeBefore: v.optional(v.number()),
});
export type DiskEvent = v.InferOutput<typeof diskEventSchema>;

const lostSchema = v.object({ disk: v.string(), path: v.string(), exportName: v.string(), reason: v.string() });
export type ServedDiskLost = v.InferOutput<typeof lostSchema>;

const readySchema = v.object({ protocol: v.literal(1), pid: v.number(), uid: v.number(), elevated: v.boolean(), socket: v.string() });

/** A reply line can carry a whole inventory; far more than any machine's disks need. */
const MAX_LINE_BYTES = 16 * 1024 * 1024;

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
}

/** pkexec's own exit codes (pkexec(1)). */
function exitReason(code: number | null, signal: string | null, stderr: string): string {
  const last = stderr.trim().split('\n').pop() ?? '';
  const detail = last ? `: ${last}` : '';
  if (code === 126) return `authorization to manage disks was dismissed (pkexec exit 126)${detail}`;
  if (code === 127) return `not authorized to run the disk helper, or pkexec could not ask (exit 127)${detail}`;
  return `the disk helper exited (${signal ?? `code ${code}`})${detail}`;
}

export class DiskHelperClient extends EventEmitter {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exited: DiskHelperError | undefined;
  private readonly exitPromise: Promise<void>;
  socket = '';
  pid = 0;
  elevated = false;

  private constructor(private readonly child: ChildProcess) {
    super();
    this.exitPromise = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** Starts the helper and waits for its "ready" line (default timeout 30 s: pkexec waits for a password). */
  static async start(launch: HelperLaunch = helperLaunch('source'), options: { readyTimeoutMs?: number } = {}): Promise<DiskHelperClient> {
    const child = spawn(launch.command, [...launch.args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...launch.env },
    });
    const client = new DiskHelperClient(child);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-8192);
    });
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new DiskHelperError('HELPER_TIMEOUT', 'the disk helper did not start in time')), options.readyTimeoutMs ?? 30_000);
      client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(new DiskHelperError('HELPER_EXITED', `cannot start the disk helper (${launch.command}): ${error.message}`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new DiskHelperError('HELPER_EXITED', exitReason(code, signal, stderr)));
      });
    });
    const framer = new LineFramer(MAX_LINE_BYTES);
    child.stdout!.on('data', (chunk: Buffer) => {
      try {
        for (const line of framer.push(chunk)) client.receive(line);
      } catch (error) {
        client.fail(new DiskHelperError('PROTOCOL', `the disk helper sent an unreadable reply: ${(error as Error).message}`));
        child.kill('SIGTERM');
      }
    });
    child.once('exit', (code, signal) => {
      client.fail(new DiskHelperError('HELPER_EXITED', exitReason(code, signal, stderr)));
      client.emit('exit', { code, signal });
    });
    child.stdin!.on('error', () => {}); // EPIPE after the helper exited: reported through 'exit'
    try {
      await ready;
    } catch (error) {
      child.kill('SIGTERM');
      throw error;
    }
    return client;
  }

  list(): Promise<HelperDisk[]> {
    return this.request({ op: 'list' }, v.array(diskSchema));
  }

  served(): Promise<ServedDisk[]> {
    return this.request({ op: 'served' }, v.array(servedDiskSchema));
  }

  smart(disk: string): Promise<SmartReport> {
    return this.request({ op: 'smart', disk }, smartSchema);
  }

  serve(disk: string, options: { confirmExistingData?: boolean } = {}): Promise<ServedDisk> {
    return this.request({ op: 'serve', disk, ...(options.confirmExistingData ? { confirmExistingData: true } : {}) }, servedDiskSchema);
  }

  async stop(disk: string): Promise<void> {
    await this.request({ op: 'stop', disk }, v.null());
  }

  /** Sends one raw line (tests of the helper's validation use it); resolves with the reply's result. */
  sendRaw(line: string, id: number): Promise<unknown> {
    return this.send(line, id);
  }

  /** Ends the helper's input; it stops serving and exits. SIGTERM after `timeoutMs`, SIGKILL after twice that. */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGTERM'), timeoutMs);
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 2 * timeoutMs);
    await this.exitPromise;
    clearTimeout(timer);
    clearTimeout(killer);
  }

  private async request<T>(body: Record<string, unknown>, schema: v.GenericSchema<unknown, T>): Promise<T> {
    const id = this.nextId++;
    const result = await this.send(`${JSON.stringify({ id, ...body })}\n`, id);
    const parsed = v.safeParse(schema, result);
    if (!parsed.success) throw new DiskHelperError('PROTOCOL', `the disk helper's reply to ${String(body.op)} does not have the expected shape: ${parsed.issues[0].message}`);
    return parsed.output;
  }

  private send(line: string, id: number): Promise<unknown> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin!.write(line.endsWith('\n') ? line : `${line}\n`);
    });
  }

  private receive(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      this.emit('helper-error', new DiskHelperError('PROTOCOL', `the disk helper printed a line that is not JSON: ${line.slice(0, 200)}`));
      return;
    }
    const event = (message as { event?: unknown })?.event;
    if (typeof event === 'string') {
      this.event(event, message);
      return;
    }
    const parsed = v.safeParse(replySchema, message);
    if (!parsed.success) return;
    const reply = parsed.output;
    const waiter = reply.id === null ? undefined : this.pending.get(reply.id);
    if (!waiter) {
      // A reply to a line the helper could not read carries id null: fail the oldest request, which sent it.
      const oldest = [...this.pending.entries()][0];
      if (reply.id === null && oldest && !reply.ok) {
        this.pending.delete(oldest[0]);
        oldest[1].reject(new DiskHelperError(reply.error.code, reply.error.message));
      }
      return;
    }
    this.pending.delete(reply.id!);
    if (reply.ok) waiter.resolve(reply.result);
    else waiter.reject(new DiskHelperError(reply.error.code, reply.error.message));
  }

  private event(name: string, message: unknown): void {
    if (name === 'ready') {
      const ready = v.safeParse(readySchema, message);
      if (!ready.success) {
        this.fail(new DiskHelperError('PROTOCOL', 'the disk helper speaks another protocol version'));
        this.child.kill('SIGTERM');
        return;
      }
      this.socket = ready.output.socket;
      this.pid = ready.output.pid;
      this.elevated = ready.output.elevated;
      this.emit('ready');
    } else if (name === 'served-disk-lost') {
      const lost = v.safeParse(lostSchema, message);
      if (lost.success) this.emit(name, lost.output);
    } else if (name === 'disk-added' || name === 'disk-removed' || name === 'disk-changed') {
      const e = v.safeParse(diskEventSchema, message);
      if (e.success) this.emit(name, e.output);
    }
  }

  private fail(error: DiskHelperError): void {
    this.exited ??= error;
    for (const [, waiter] of this.pending) waiter.reject(error);
    this.pending.clear();
  }
}
