import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CONTRACT_VERSION } from '../../preload/api.js';
import { startBrowserMode, type BrowserModeServer } from './browser-mode.js';
import { ControlClient } from './control-client.js';
import { EngineHost } from './engine-host.js';
import { PoolRegistry } from './pool-registry.js';
import { ensurePrivateDir } from './runtime-paths.js';

let dir: string;
let host: EngineHost;
let server: BrowserModeServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spindle-browser-'));
  await ensurePrivateDir(join(dir, 'run'));
  const socketPath = join(dir, 'run', 'control.sock');
  host = new EngineHost({ socketPath, version: '1.2.3', pools: new PoolRegistry({ stateDir: join(dir, 'state'), runtimeDir: join(dir, 'run') }) });
  await host.listen();
  const rendererDir = join(dir, 'renderer');
  await mkdir(join(rendererDir, 'assets'), { recursive: true });
  await writeFile(join(rendererDir, 'index.html'), '<!doctype html><title>Spindle</title>');
  await writeFile(join(rendererDir, 'assets', 'app.js'), 'console.log(1)');
  await writeFile(join(dir, 'secret.txt'), 'outside the renderer');
  server = await startBrowserMode({ socketPath, rendererDir });
});

afterAll(async () => {
  await server.close();
  await host.close();
  await rm(dir, { recursive: true, force: true });
});

function openSocket(url: string, origin: string | undefined): Promise<{ ws?: WebSocket; status?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, origin ? { origin } : {});
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode }));
    ws.once('error', () => resolve({ status: -1 }));
  });
}

describe('browser mode', () => {
  it('listens on 127.0.0.1 only', () => {
    expect(server.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('refuses the page without the token, or with a wrong one', async () => {
    for (const path of ['/', '/?token=', `/?token=${server.token.slice(0, -1)}x`, '/assets/app.js']) {
      const response = await fetch(server.origin + path);
      expect(response.status, path).toBe(403);
      expect(await response.text()).toMatch(/token/);
    }
  });

  it('serves the page with the token, sets a strict cookie and a CSP', async () => {
    const response = await fetch(server.url);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('<title>Spindle</title>');
    expect(response.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('serves assets to a browser holding the cookie', async () => {
    const cookie = `spindle_token=${server.token}`;
    const response = await fetch(`${server.origin}/assets/app.js`, { headers: { cookie } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/javascript/);
  });

  it('never serves files outside the renderer folder', async () => {
    const cookie = `spindle_token=${server.token}`;
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt']) {
      const response = await fetch(server.origin + path, { headers: { cookie } });
      expect(response.status, path).toBe(404);
    }
  });

  it('refuses a WebSocket without the token, with a wrong token, or from another origin', async () => {
    const bridge = server.origin.replace('http', 'ws') + '/bridge';
    expect((await openSocket(bridge, server.origin)).status).toBe(403);
    expect((await openSocket(`${bridge}?token=wrong`, server.origin)).status).toBe(403);
    expect((await openSocket(`${bridge}?token=${server.token}`, 'http://evil.example')).status).toBe(403);
    expect((await openSocket(`${bridge}?token=${server.token}`, undefined)).status).toBe(403);
  });

  it('a control-socket client (what the CLI uses) and a browser-mode page see the same events', async () => {
    const bridge = `${server.origin.replace('http', 'ws')}/bridge?token=${server.token}`;
    const { ws } = await openSocket(bridge, server.origin);
    const pageEvents: Array<{ event: string; data: unknown }> = [];
    ws!.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as { type: string; event?: string; data?: unknown };
      if (m.type === 'event') pageEvents.push({ event: m.event!, data: m.data });
    });
    const cli = await ControlClient.connect(join(dir, 'run', 'control.sock'));
    const cliEvents: Array<{ event: string; data: unknown }> = [];
    cli.onAnyEvent((event, data) => cliEvents.push({ event, data }));
    try {
      const images = [0, 1, 2].map((i) => join(dir, `shared-events-${i}.img`));
      for (const image of images) {
        await writeFile(image, '');
        await truncate(image, 64 * 1024 * 1024);
      }
      await cli.request('pool-create', { name: 'shared', members: images.map((i) => `file:${i}`), slabSize: 8 * 1024 * 1024 + 64 * 1024 });
      const status = await cli.request('pool-status', { pool: 'shared' });
      await cli.request('member-fail', { pool: 'shared', member: status.members[0]!.uuid });
      const failed = (list: typeof pageEvents) => list.find((e) => e.event === 'member-state' && (e.data as { member: { state: string } }).member.state === 'failed');
      await expect.poll(() => failed(pageEvents) !== undefined && failed(cliEvents) !== undefined, { timeout: 10_000 }).toBe(true);
      expect(failed(pageEvents)!.data).toEqual(failed(cliEvents)!.data);
      const kinds = (list: typeof pageEvents) => list.filter((e) => e.event !== 'engine-status').map((e) => e.event);
      await expect.poll(() => kinds(pageEvents).join() === kinds(cliEvents).join()).toBe(true);
      await cli.request('pool-export', { pool: 'shared' });
    } finally {
      cli.close();
      ws!.close();
    }
  });

  it('relays requests and events over the WebSocket bridge', async () => {
    const bridge = `${server.origin.replace('http', 'ws')}/bridge?token=${server.token}`;
    const { ws } = await openSocket(bridge, server.origin);
    expect(ws).toBeDefined();
    const messages: Array<{ type: string; id?: number; ok?: boolean; result?: unknown; event?: string; error?: { code: string } }> = [];
    ws!.on('message', (data) => messages.push(JSON.parse(data.toString())));
    ws!.send(JSON.stringify({ type: 'request', version: CONTRACT_VERSION, id: 5, method: 'version', params: {} }));
    ws!.send('not json');
    await expect.poll(() => messages.some((m) => m.type === 'reply' && m.id === 5)).toBe(true);
    expect(messages.find((m) => m.id === 5)).toMatchObject({ ok: true, result: { version: '1.2.3' } });
    await expect.poll(() => messages.some((m) => m.type === 'event' && m.event === 'engine-status')).toBe(true);
    await expect.poll(() => messages.some((m) => m.error?.code === 'BAD_MESSAGE')).toBe(true);
    ws!.close();
  });
});
