import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, MAX_MESSAGE_BYTES, type ServerMessage } from '../../preload/api.js';
import { ControlClient } from './control-client.js';
import { EngineHost } from './engine-host.js';
import { PoolRegistry } from './pool-registry.js';
import { ensurePrivateDir } from './runtime-paths.js';

/** A raw control-socket client that reads whole lines, for malformed input. */
class RawClient {
  private buffer = '';
  private waiters: Array<(message: ServerMessage) => void> = [];
  private queue: ServerMessage[] = [];
  readonly closed: Promise<void>;

  constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.buffer += text;
      let newline;
      while ((newline = this.buffer.indexOf('\n')) !== -1) {
        const message = JSON.parse(this.buffer.slice(0, newline)) as ServerMessage;
        this.buffer = this.buffer.slice(newline + 1);
        const waiter = this.waiters.shift();
        if (waiter) waiter(message);
        else this.queue.push(message);
      }
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
  }

  static async open(path: string): Promise<RawClient> {
    const socket = connect(path);
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawClient(socket);
  }

  /** The next reply, skipping events. */
  async reply(): Promise<Extract<ServerMessage, { type: 'reply' }>> {
    for (;;) {
      const message = this.queue.shift() ?? (await new Promise<ServerMessage>((resolve) => this.waiters.push(resolve)));
      if (message.type === 'reply') return message;
    }
  }

  send(text: string): void {
    this.socket.write(text);
  }
}

let dir: string;
let host: EngineHost;
let socketPath: string;
let shutdowns = 0;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spindle-host-'));
  const runtime = join(dir, 'run');
  await ensurePrivateDir(runtime);
  socketPath = join(runtime, 'control.sock');
  shutdowns = 0;
  const pools = new PoolRegistry({ stateDir: join(dir, 'state'), runtimeDir: runtime });
  host = new EngineHost({ socketPath, version: '9.9.9', pools, onShutdownRequested: () => shutdowns++ });
  await host.listen();
});

afterEach(async () => {
  await host.close();
  await rm(dir, { recursive: true, force: true });
});

const envelope = (fields: Record<string, unknown>) =>
  JSON.stringify({ type: 'request', version: CONTRACT_VERSION, id: 1, method: 'version', params: {}, ...fields }) + '\n';

describe('EngineHost', () => {
  it('answers version through a typed client', async () => {
    const client = await ControlClient.connect(socketPath);
    const info = await client.request('version', {});
    expect(info).toMatchObject({ version: '9.9.9', contractVersion: CONTRACT_VERSION, pid: process.pid });
    expect(info.uptimeMs).toBeGreaterThanOrEqual(0);
    client.close();
  });

  it('makes its socket private (0600 in a 0700 directory)', async () => {
    expect((await stat(socketPath)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'run'))).mode & 0o777).toBe(0o700);
  });

  it('sends engine-status on connect and then every second', async () => {
    const client = await ControlClient.connect(socketPath);
    const seen: number[] = [];
    await new Promise<void>((resolve) => {
      client.on('engine-status', (status) => {
        seen.push(status.uptimeMs);
        if (seen.length === 2) resolve();
      });
    });
    expect(seen[1]).toBeGreaterThan(seen[0]!);
    client.close();
  });

  it.each([
    ['not JSON', 'hello\n', 'BAD_MESSAGE'],
    ['JSON that is not an envelope', '[1,2,3]\n', 'BAD_MESSAGE'],
    ['another contract version', envelope({ version: 99 }), 'VERSION_MISMATCH'],
    ['an unknown method', envelope({ method: 'format-everything' }), 'UNKNOWN_METHOD'],
    ['bad parameters', envelope({ params: { force: 1 } }), 'INVALID_PARAMS'],
  ])('replies to %s with a clear error and keeps the connection', async (_what, text, code) => {
    const raw = await RawClient.open(socketPath);
    raw.send(text);
    const reply = await raw.reply();
    expect(reply).toMatchObject({ ok: false, error: { code } });
    if (!reply.ok) expect(reply.error.message.length).toBeGreaterThan(5);
    raw.send(envelope({ id: 2 }));
    expect(await raw.reply()).toMatchObject({ id: 2, ok: true });
    raw.socket.destroy();
  });

  it('closes only the connection that sends an oversized message', async () => {
    const bystander = await ControlClient.connect(socketPath);
    const raw = await RawClient.open(socketPath);
    raw.send('x'.repeat(MAX_MESSAGE_BYTES + 10));
    expect(await raw.reply()).toMatchObject({ ok: false, error: { code: 'TOO_LARGE' } });
    await raw.closed;
    expect(await bystander.request('version', {})).toMatchObject({ version: '9.9.9' });
    bystander.close();
  });

  it('survives a client that disconnects with a request in flight', async () => {
    for (let i = 0; i < 20; i++) {
      const raw = await RawClient.open(socketPath);
      raw.send(envelope({ id: i }));
      raw.socket.destroy();
    }
    const client = await ControlClient.connect(socketPath);
    expect(await client.request('version', {})).toMatchObject({ version: '9.9.9' });
    client.close();
    await expect.poll(() => host.clientCount).toBe(0);
  });

  it('takes a shutdown request and replies before stopping', async () => {
    const client = await ControlClient.connect(socketPath);
    expect(await client.request('shutdown', {})).toEqual({ stopping: true });
    await expect.poll(() => shutdowns).toBe(1);
    client.close();
  });

  it('fails pending requests with DISCONNECTED when the host goes away', async () => {
    const client = await ControlClient.connect(socketPath);
    const closed = new Promise<void>((resolve) => client.onClose(resolve));
    await host.close();
    await closed;
    await expect(client.request('version', {})).rejects.toMatchObject({ code: 'DISCONNECTED' });
  });
});
