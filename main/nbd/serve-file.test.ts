import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NbdClient } from './client.js';
import { serveFile } from './serve-file.js';
import { canConnect, cleanupAll, makeImage, startPeer, tempDir, waitFor } from './test-support.js';

afterEach(cleanupAll);

describe('serveFile', () => {
  it('serves an image on a Unix socket (mode 0600) and removes the socket on close', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'disk.img');
    const data = await makeImage(file, 1 << 20);
    const sock = path.join(dir, 'nbd.sock');
    const served = await serveFile({ file, socket: sock });
    expect(served.socketPath).toBe(sock);
    expect((await fsp.stat(sock)).mode & 0o777).toBe(0o600);
    const c = await NbdClient.connect(served.uri);
    expect(c.info.description).toBe('disk.img');
    expect((await c.read(0, 1 << 20)).equals(data)).toBe(true);
    await c.close();
    await served.close();
    await expect(fsp.stat(sock)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('serves on TCP port 0 and reports the bound port', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'disk.img');
    await makeImage(file, 65536);
    const served = await serveFile({ file, port: 0, exportName: 'vol 1' });
    expect(served.port).toBeGreaterThan(0);
    expect(served.uri).toBe(`nbd://127.0.0.1:${served.port}/vol%201`);
    const c = await NbdClient.connect(served.uri);
    expect(c.info.exportName).toBe('vol 1');
    await c.write(0, Buffer.from('x'));
    await c.close();
    await served.close();
    expect((await fsp.readFile(file))[0]).toBe('x'.charCodeAt(0));
  });

  it('read-only serving advertises READ_ONLY and refuses writes', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'disk.img');
    await makeImage(file, 65536);
    const served = await serveFile({ file, socket: path.join(dir, 's'), readOnly: true });
    const c = await NbdClient.connect(served.uri);
    expect(c.capabilities.readOnly).toBe(true);
    await expect(c.write(0, Buffer.alloc(1))).rejects.toMatchObject({ errno: 'EPERM' });
    await c.close();
    await served.close();
  });

  it('rejects a missing file, a directory, and both or neither of socket and port', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'disk.img');
    await makeImage(file, 4096);
    await expect(serveFile({ file: path.join(dir, 'missing.img'), port: 0 })).rejects.toThrow(/not found/);
    await expect(serveFile({ file: dir, port: 0 })).rejects.toThrow(/is a directory/);
    await expect(serveFile({ file, port: 0, socket: path.join(dir, 's') })).rejects.toThrow(/exactly one/);
    await expect(serveFile({ file })).rejects.toThrow(/exactly one/);
    await expect(serveFile({ file, port: 70000 })).rejects.toThrow(/bad TCP port/);
  });

  it('reuses a stale socket file but refuses one a live server answers on', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'disk.img');
    await makeImage(file, 4096);
    const sock = path.join(dir, 's');
    const first = await serveFile({ file, socket: sock });
    await expect(serveFile({ file, socket: sock })).rejects.toThrow(/cannot listen/);
    await first.close();
    // A server killed with SIGKILL leaves its socket file behind.
    const dead = startPeer('python3', ['-c', `import socket,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(${JSON.stringify(sock)})\ns.listen()\ntime.sleep(60)`]);
    await waitFor(() => canConnect(sock), 'the dummy listener');
    await dead.stop('SIGKILL');
    expect((await fsp.stat(sock)).isSocket()).toBe(true);
    const second = await serveFile({ file, socket: sock });
    const c = await NbdClient.connect(second.uri);
    await c.close();
    await second.close();
  });
});
