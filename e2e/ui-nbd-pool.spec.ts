/**
 * A pool on real NBD members, built and watched through the UI: three image
 * files served by nbdkit on Unix sockets, made into a pool with the "New
 * pool" dialog, a raid1 volume created and exported from the page and
 * written with qemu-io; then one nbdkit is killed — a real member failure,
 * which the page must show on the drive, the pool and the layout map — and
 * started again and restored from the page, with the data intact.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { startApp, type RunningApp } from './spindle-app.js';
import { qemuIo, snap } from './ui-support.js';

let app: RunningApp;
let dir: string;
const servers = new Map<string, ChildProcess>();

async function serve(name: string): Promise<void> {
  const socket = join(dir, `${name}.sock`);
  // A killed nbdkit leaves its socket file behind: remove it so that the wait below sees the new one.
  await rm(socket, { force: true });
  const child = spawn('nbdkit', ['-f', '-U', socket, 'file', join(dir, `${name}.img`)], { stdio: 'ignore' });
  servers.set(name, child);
  for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 25));
  expect(existsSync(socket), `nbdkit for ${name} is listening`).toBe(true);
}

async function stop(name: string): Promise<void> {
  const child = servers.get(name);
  servers.delete(name);
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

test.describe.configure({ mode: 'serial' });
test.setTimeout(180_000);

test.beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spindle-ui-nbd-'));
  for (const name of ['m0', 'm1', 'm2']) {
    const file = await open(join(dir, `${name}.img`), 'w');
    await file.truncate(1024 ** 3);
    await file.close();
    await serve(name);
  }
  app = await startApp();
});

test.afterAll(async () => {
  await app?.stop();
  for (const name of [...servers.keys()]) await stop(name);
  await rm(dir, { recursive: true, force: true });
});

test('a pool of nbdkit members: create, write over NBD, a member dies, restore, data intact', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto(app.url);
  await expect(page.getByRole('status', { name: 'Engine connection' })).toHaveText('Connected');

  // The "New pool" dialog, with the members typed as NBD URIs.
  await page.getByRole('button', { name: 'Create a pool…' }).click();
  const dialog = page.getByRole('dialog', { name: 'New pool' });
  await dialog.getByLabel('Name').fill('tank');
  await dialog.getByLabel(/^Drives/).fill(['m0', 'm1', 'm2'].map((m) => `nbd+unix:///?socket=${join(dir, `${m}.sock`)}`).join('\n'));
  await expect(dialog.getByRole('note')).toContainText('Creates pool tank on m0.sock, m1.sock, m2.sock');
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(dialog).toBeHidden({ timeout: 60_000 });
  const pool = page.getByRole('article', { name: /^Pool tank/ });
  await expect(pool.getByText('Online', { exact: true }).first()).toBeVisible();
  await expect(page.getByRole('list', { name: 'Drives of pool tank' }).getByRole('listitem')).toHaveCount(3);
  // Not a demo pool: no simulated faults offered (the demo pool beside it has them).
  await expect(page.getByRole('list', { name: 'Drives of pool tank' }).getByRole('button', { name: /^Simulate failure/ })).toHaveCount(0);
  await expect(pool.getByRole('button', { name: /^Corrupt a block/ })).toHaveCount(0);

  // A raid1 volume, exported and written.
  await pool.getByRole('button', { name: 'New volume in pool tank' }).click();
  const form = page.getByRole('form', { name: 'New volume in pool tank' });
  await form.getByLabel('Name').fill('vol');
  await form.getByLabel('Size (MiB)').fill('64');
  await form.getByLabel('Layout').selectOption('raid1');
  await form.getByRole('button', { name: 'Create volume' }).click();
  await expect(pool.getByRole('row', { name: /vol/ })).toContainText('raid1');
  await page.getByRole('button', { name: 'Export tank/vol over NBD' }).click();
  const uri = (await page.getByTestId('volume-tank/vol').locator('code').getAttribute('title'))!;
  qemuIo(uri, 'write -P 0x3c 0 4M', 'flush');
  await snap(page, 'nbd-pool');

  // Which member holds the volume: the first with a slab in its map.
  await page.getByRole('button', { name: 'Show layout map of tank/vol' }).click();
  const map = page.getByRole('region', { name: 'Layout map of tank/vol' });
  await expect(map.getByTestId('layout-map-summary')).toContainText('All chunks fully redundant');
  await map.getByText('Slabs per drive').click();
  let victim = '';
  for (const row of await map.getByRole('table').getByRole('row').all()) {
    const cells = await row.getByRole('cell').allTextContents();
    if (cells.length > 1 && Number(cells[1]) > 0) {
      victim = (await row.getByRole('rowheader').textContent())!;
      break;
    }
  }
  expect(victim).toMatch(/^m\d\.sock$/);

  // The member's server dies; the next writes find it gone.
  await stop(victim.replace('.sock', ''));
  qemuIo(uri, 'write -P 0x3c 0 4M', 'flush');
  const card = page.getByRole('listitem', { name: victim });
  await expect(card.getByText(/^(Failed|Missing)$/)).toBeVisible({ timeout: 30_000 });
  await expect(pool.getByText('Degraded', { exact: true }).first()).toBeVisible();
  await expect(page.getByRole('status', { name: 'Pool health' })).toContainText('Redundancy reduced');
  await expect(page.getByRole('alert', { name: `Drive ${victim} failed` })).toBeVisible();
  await expect(map.getByTestId('layout-map-summary')).toContainText(/[1-9]\d* chunks? degraded/);
  qemuIo(uri, 'read -P 0x3c 0 4M');
  await snap(page, 'nbd-member-died');

  // Its server is back: restore it from the page.
  await serve(victim.replace('.sock', ''));
  await page.getByRole('button', { name: `Restore ${victim}` }).click();
  // Back in use; the write errors it caused stay counted, so it still stands out.
  await expect(card.getByText('Errors', { exact: true })).toBeVisible({ timeout: 60_000 });
  await expect(card.getByTestId('drive-errors')).toHaveText(/write [1-9]\d*/);
  await expect(pool.getByText('Online', { exact: true }).first()).toBeVisible();
  await expect(page.getByRole('status', { name: 'Pool health' })).toContainText('All pools healthy');
  await expect(map.getByTestId('layout-map-summary')).toContainText('All chunks fully redundant');
  qemuIo(uri, 'read -P 0x3c 0 4M');
  await snap(page, 'nbd-member-restored');
});
