/**
 * Helpers for the NBD tests: temp folders, peer processes (nbdkit, qemu-nbd,
 * nbd-server, nbdinfo...) started and stopped by pid, polling waits, and a
 * raw NBD speaker for tests that must send what no well-behaved client
 * would.
 *
 * Every process and folder a test creates is registered here and removed by
 * cleanupAll(), which the test files call from afterEach/afterAll so that a
 * failing test leaves nothing behind.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ByteQueue } from './byte-queue.js';
import type { BlockDevice, BlockDeviceCapabilities, Extent, WriteOptions, WriteZeroesOptions } from './block-device.js';
import {
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  encodeClientFlags,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeOption,
  encodeRequest,
  BASE_ALLOCATION,
} from './protocol.js';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const sockets = new Set<net.Socket>();

export async function tempDir(prefix = 'spindle-nbd-'): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

/** Polls `check` until it returns a truthy value; generous default for a loaded 2-core machine. */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}

/** True once something accepts connections on the Unix socket. */
export function canConnect(target: string | { host: string; port: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const s = typeof target === 'string' ? net.connect(target) : net.connect(target.port, target.host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface Peer {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  /** Sends the signal (default SIGTERM) and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  readonly exited: Promise<number | null>;
}

/** Starts a long-running peer in the foreground; the returned pid is the server itself. */
export function startPeer(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Peer {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  children.add(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    });
    child.once('error', (err) => {
      out += String(err);
      children.delete(child);
      resolve(-1);
    });
  });
  return {
    child,
    get pid() {
      return child.pid ?? -1;
    },
    output: () => out,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Starts a server peer and waits until it accepts connections on
 * `socketPath` (or, with probe 'file', until the socket file exists: for
 * servers that serve only one client, which a probe would use up).
 */
export async function startServerPeer(cmd: string, args: readonly string[], socketPath: string, probe: 'connect' | 'file' = 'connect'): Promise<Peer> {
  const peer = startPeer(cmd, args);
  let gone = false;
  void peer.exited.then(() => (gone = true));
  const ready = probe === 'connect' ? () => canConnect(socketPath) : () => exists(socketPath);
  await waitFor(async () => gone || (await ready()), `${cmd} to listen on ${socketPath}`);
  if (gone) throw new Error(`${cmd} exited before listening: ${peer.output()}`);
  return peer;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion (never through a shell). */
export function run(cmd: string, args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      children.delete(child);
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === -1 ? String(err) : '') });
    });
    children.add(child);
  });
}

/**
 * Runs qemu-io on an NBD URI, each command as one `-c`, and throws with
 * qemu-io's output unless it exited 0 and printed no error. The output is
 * checked as well as the status because not every qemu-io release turns a
 * failed command (a "Pattern verification failed" read) into a non-zero exit.
 */
export async function qemuIo(uri: string, ...commands: string[]): Promise<string> {
  const result = await run('qemu-io', ['-f', 'raw', uri, ...commands.flatMap((c) => ['-c', c])], 120_000);
  const output = result.stdout + result.stderr;
  if (result.code !== 0 || /verification failed|error|failed/i.test(output)) throw new Error(`qemu-io ${commands.join('; ')}:\n${output}`);
  return output;
}

/** Writes an image file of `size` bytes filled with a deterministic pseudo-random pattern. */
export async function makeImage(file: string, size: number, seed = 1): Promise<Buffer> {
  const data = patternBuffer(size, seed);
  await fsp.writeFile(file, data);
  return data;
}

/** Deterministic bytes (xorshift32), so tests can recompute what they wrote. */
export function patternBuffer(size: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  for (; i < size; i++) b[i] = i & 0xff;
  return b;
}

/** A small seeded PRNG for fuzzing. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

/** Kills every peer still running and removes temp folders. */
export async function cleanupAll(): Promise<void> {
  for (const s of sockets) s.destroy();
  sockets.clear();
  const waits: Promise<unknown>[] = [];
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      waits.push(new Promise((r) => c.once('exit', r)));
      c.kill('SIGKILL');
    }
  }
  await Promise.all(waits);
  children.clear();
  for (const d of dirs) await fsp.rm(d, { recursive: true, force: true }).catch(() => {});
  dirs.clear();
}

// ---------------------------------------------------------------------------
// Devices for tests

/** What a test device saw: one entry per call. */
export interface DeviceCall {
  readonly op: string;
  readonly offset: number;
  readonly length: number;
  readonly options?: WriteZeroesOptions;
}

/**
 * Wraps a device to record calls, count concurrency, delay chosen calls,
 * and inject failures: a filter, in nbdkit's sense.
 */
export class InstrumentedDevice implements BlockDevice {
  readonly calls: DeviceCall[] = [];
  active = 0;
  maxActive = 0;
  /** Milliseconds to hold a call before passing it on; per call. */
  delayMs: (call: DeviceCall) => number = () => 0;
  /** Throw this instead of calling the device. */
  failWith: (call: DeviceCall) => unknown = () => undefined;
  readonly capabilities: BlockDeviceCapabilities;
  readonly cache?: (offset: number, length: number) => Promise<void>;
  readonly blockStatus?: (offset: number, length: number) => Promise<Extent[]>;

  constructor(
    private readonly inner: BlockDevice,
    caps: Partial<BlockDeviceCapabilities> = {},
    opts: { blockStatus?: boolean } = {},
  ) {
    this.capabilities = { ...inner.capabilities, ...caps };
    if (inner.cache) this.cache = (o, l) => this.wrap('cache', o, l, undefined, () => inner.cache!(o, l));
    if (inner.blockStatus && opts.blockStatus !== false) {
      this.blockStatus = (o, l) => this.wrap('blockStatus', o, l, undefined, () => inner.blockStatus!(o, l));
    }
  }

  get size(): number {
    return this.inner.size;
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.wrap('read', offset, length, undefined, () => this.inner.read(offset, length));
  }
  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    const copy = Buffer.from(data);
    return this.wrap('write', offset, data.length, options, () => this.inner.write(offset, copy, options));
  }
  flush(): Promise<void> {
    return this.wrap('flush', 0, 0, undefined, () => this.inner.flush());
  }
  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.wrap('trim', offset, length, options, () => this.inner.trim(offset, length, options));
  }
  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return this.wrap('writeZeroes', offset, length, options, () => this.inner.writeZeroes(offset, length, options));
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  private async wrap<T>(op: string, offset: number, length: number, options: WriteZeroesOptions | undefined, fn: () => Promise<T>): Promise<T> {
    const call: DeviceCall = { op, offset, length, options };
    this.calls.push(call);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      const ms = this.delayMs(call);
      if (ms > 0) await new Promise((r) => setTimeout(r, ms));
      const failure = this.failWith(call);
      if (failure !== undefined) throw failure;
      return await fn();
    } finally {
      this.active--;
    }
  }
}

// ---------------------------------------------------------------------------
// A raw NBD speaker

/** A socket plus a byte queue, for tests that speak the protocol by hand. */
export class RawPeer {
  readonly socket: net.Socket;
  readonly q = new ByteQueue();
  ended = false;
  closed = false;
  private waiter: (() => void) | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    sockets.add(socket);
    socket.on('data', (c: Buffer) => {
      this.q.push(c);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      sockets.delete(socket);
      this.wake();
    });
  }

  static connect(target: string | { host: string; port: number }): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = typeof target === 'string' ? net.connect(target) : net.connect(target.port, target.host);
      s.once('connect', () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Open sockets made by RawPeer and not yet closed. */
  static openCount(): number {
    return sockets.size;
  }

  send(...bufs: Uint8Array[]): void {
    for (const b of bufs) this.socket.write(b);
  }

  /** Resolves with n bytes, or rejects if the server closes first. */
  async read(n: number, timeoutMs = 20_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.q.length < n) {
      if (this.ended || this.closed) throw new Error(`connection closed with ${this.q.length} of ${n} bytes received`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes (have ${this.q.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return Buffer.from(this.q.take(n));
  }

  /** Resolves when the server has closed the connection (EOF or close). */
  async closedByServer(timeoutMs = 20_000): Promise<void> {
    await waitFor(() => this.ended || this.closed, 'the server to close the connection', timeoutMs);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Reads one option reply: {option, type, data}. */
  async optionReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const h = await this.read(20);
    const data = await this.read(h.readUInt32BE(16));
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data };
  }

  /**
   * Fixed-newstyle handshake ending in GO on `exportName`; returns size and
   * transmission flags. `structured` also negotiates base:allocation.
   */
  async handshake(exportName = '', structured = false): Promise<{ size: number; flags: number }> {
    await this.read(18);
    this.send(encodeClientFlags(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES));
    if (structured) {
      this.send(encodeOption(NBD_OPT_STRUCTURED_REPLY));
      const r = await this.optionReply();
      if (r.type !== NBD_REP_ACK) throw new Error(`structured replies refused: ${r.type}`);
      this.send(encodeOption(NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest(exportName, [BASE_ALLOCATION])));
      while ((await this.optionReply()).type !== NBD_REP_ACK);
    }
    this.send(encodeOption(NBD_OPT_GO, encodeInfoRequest(exportName, [NBD_INFO_BLOCK_SIZE])));
    let size = -1;
    let flags = 0;
    for (;;) {
      const r = await this.optionReply();
      if (r.type === NBD_REP_ACK) break;
      if (r.type & 0x80000000) throw new Error(`GO refused: 0x${r.type.toString(16)} ${r.data.toString()}`);
      if (r.data.readUInt16BE(0) === 0) {
        size = Number(r.data.readBigUInt64BE(2));
        flags = r.data.readUInt16BE(10);
      }
    }
    return { size, flags };
  }

  request(type: number, offset: number, length: number, cookie: number, flags = 0, payload?: Uint8Array): void {
    this.send(encodeRequest({ flags, type, cookieHi: 0, cookieLo: cookie, offset, length }));
    if (payload) this.send(payload);
  }

  /** Reads one simple reply (with `dataLength` bytes of data on success). */
  async simpleReply(dataLength = 0): Promise<{ error: number; cookie: number; data: Buffer }> {
    const h = await this.read(16);
    if (h.readUInt32BE(0) !== NBD_SIMPLE_REPLY_MAGIC) throw new Error(`not a simple reply: 0x${h.readUInt32BE(0).toString(16)}`);
    const error = h.readUInt32BE(4);
    const data = error === 0 && dataLength > 0 ? await this.read(dataLength) : Buffer.alloc(0);
    return { error, cookie: h.readUInt32BE(12), data };
  }

  /** Reads one structured chunk, or a simple reply (type -1) if that is what comes. */
  async chunk(): Promise<{ flags: number; type: number; cookie: number; payload: Buffer; error?: number }> {
    const m = await this.read(4);
    const magic = m.readUInt32BE(0);
    if (magic === NBD_SIMPLE_REPLY_MAGIC) {
      const rest = await this.read(12);
      return { flags: 1, type: -1, cookie: rest.readUInt32BE(8), payload: Buffer.alloc(0), error: rest.readUInt32BE(0) };
    }
    if (magic !== NBD_STRUCTURED_REPLY_MAGIC) throw new Error(`bad reply magic 0x${magic.toString(16)}`);
    const h = await this.read(16);
    const payload = await this.read(h.readUInt32BE(12));
    const type = h.readUInt16BE(2);
    return { flags: h.readUInt16BE(0), type, cookie: h.readUInt32BE(8), payload, error: type & 0x8000 ? payload.readUInt32BE(0) : undefined };
  }
}
