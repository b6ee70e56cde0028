/**
 * The demo story against today's engine, in browser mode with a real engine
 * host whose demo pool's members are image files served over NBD (the host's
 * demo-disks socket): the demo pool's drives, pools and volumes; a layout map; data written
 * over the volume's real NBD export with qemu-io; a simulated drive failure
 * seen on the drive, the pool and the map; restore; a corrupted block found
 * by its checksum. Screenshots of each step are saved as test artifacts.
 * The steps that need the jobs backend are in ui-rebuild-story.spec.ts.
 */
import { expect, test } from '@playwright/test';
import { startApp, type RunningApp } from './spindle-app.js';
import { auditAccessibility, openDemo, qemuIo, snap, tabTo } from './ui-support.js';

let app: RunningApp;

test.describe.configure({ mode: 'serial' });
test.setTimeout(120_000);

test.beforeAll(async () => {
  app = await startApp();
});

test.afterAll(async () => {
  await app?.stop();
});

test('the demo story: drives, pools, layout map, NBD data, failure, restore, corruption', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await openDemo(page, app.url);

  // Drives, pools and volumes.
  const pool = page.getByRole('article', { name: /^Pool demo/ });
  await expect(pool.getByText('Online', { exact: true }).first()).toBeVisible();
  // The pool's six, the demo's unassigned image, and whatever disks this machine has.
  await expect(page.getByTestId('drives-count')).toHaveText(/^([7-9]|\d\d+) drives/);
  await expect(page.getByTestId('unassigned-drives')).toContainText('disk6');
  const drives = page.getByRole('list', { name: 'Drives of pool demo' }).getByRole('listitem');
  await expect(drives).toHaveCount(6);
  await expect(page.getByRole('listitem', { name: 'disk5' })).toContainText('Spare of demo');
  await expect(pool.getByRole('meter', { name: 'Space in pool demo' })).toHaveAttribute('aria-valuetext', /used of/);
  await expect(pool.getByRole('row', { name: /photos/ })).toContainText('raid1');
  await expect(pool.getByRole('row', { name: /archive/ })).toContainText('raid5');
  await expect(page.getByRole('status', { name: 'Pool health' })).toContainText('All pools healthy');
  await snap(page, 'demo-pool');

  // The layout map of the raid1 volume.
  await page.getByRole('button', { name: 'Show layout map of demo/photos' }).click();
  const map = page.getByRole('region', { name: 'Layout map of demo/photos' });
  await expect(map.getByTestId('layout-map-summary')).toContainText('All chunks fully redundant');
  await expect(map.getByRole('img', { name: /Layout map of demo\/photos: 0 of \d+ chunks degraded/ })).toBeVisible();
  await map.getByText('Slabs per drive').click();
  // The drive holding the first slab of the map: failing it must affect this volume.
  const rows = map.getByRole('table').getByRole('row');
  let victim = '';
  for (const row of await rows.all()) {
    const cells = await row.getByRole('cell').allTextContents();
    if (cells.length > 1 && Number(cells[1]) > 0) {
      victim = (await row.getByRole('rowheader').textContent())!;
      break;
    }
  }
  expect(victim).toMatch(/^disk\d$/);
  await snap(page, 'layout-map');

  // Export the volume and write data over NBD.
  await page.getByRole('button', { name: 'Export demo/photos over NBD' }).click();
  await expect(page.getByRole('button', { name: 'Copy NBD address of demo/photos' })).toBeVisible();
  const address = page.getByTestId('volume-demo/photos').locator('code');
  const uri = (await address.getAttribute('title'))!;
  expect(uri).toMatch(/^nbd\+unix:\/\/\/demo\/photos\?socket=/);
  qemuIo(uri, 'write -P 0x5a 8M 2M', 'flush');
  qemuIo(uri, 'read -P 0x5a 8M 2M');
  await snap(page, 'exported');

  // Simulate a failure of the drive that holds the map's first slab.
  await page.getByRole('button', { name: `Simulate failure of ${victim}` }).click();
  const victimCard = page.getByRole('listitem', { name: victim });
  await expect(victimCard.getByText('Failed', { exact: true })).toBeVisible();
  await expect(pool.getByText('Degraded', { exact: true }).first()).toBeVisible();
  await expect(page.getByRole('status', { name: 'Pool health' })).toContainText('Redundancy reduced');
  await expect(page.getByRole('alert', { name: `Drive ${victim} failed` })).toBeVisible();
  // The one-click rebuild is offered (ui-rebuild-story.spec.ts runs it; this story restores the drive instead).
  await expect(pool.getByRole('button', { name: 'Rebuild', exact: true })).toBeVisible();
  await expect(map.getByTestId('layout-map-summary')).toContainText(/[1-9]\d* chunks? degraded/);
  await expect(map.getByRole('img', { name: /Layout map of demo\/photos: [1-9]\d* of \d+ chunks degraded/ })).toBeVisible();
  const victimRow = map.getByRole('table').getByRole('row', { name: new RegExp(`^${victim.replace('.', '\\.')}`) });
  await expect(victimRow.getByRole('cell').first()).toHaveText('failed');
  // The data is still all there, served from the other copy.
  qemuIo(uri, 'read -P 0x5a 8M 2M');
  await snap(page, 'drive-failed');

  // Restore it.
  await page.getByRole('button', { name: `Restore ${victim}` }).click();
  await expect(victimCard.getByText('Online', { exact: true })).toBeVisible({ timeout: 30_000 });
  await expect(page.getByRole('status', { name: new RegExp(`Repair finished: ${victim.replace('.', '\\.')} is back online`) })).toBeVisible();
  await expect(page.getByRole('status', { name: 'Pool health' })).toContainText('All pools healthy');
  await expect(map.getByTestId('layout-map-summary')).toContainText('All chunks fully redundant');
  await snap(page, 'restored');

  // Corrupt a block and read it back over NBD: the checksum catches it.
  await page.getByRole('button', { name: 'Corrupt a block of demo/photos' }).click();
  const corrupted = page.getByRole('status', { name: /^Corrupted one copy of the block at .* in demo\/photos$/ });
  await expect(corrupted).toBeVisible();
  const offset = Number(/byte offset (\d+)/.exec((await corrupted.textContent())!)![1]);
  qemuIo(uri, `read ${offset - (offset % 4096)} 4k`);
  await expect(page.getByRole('status', { name: /^Checksum errors found on disk\d$/ })).toBeVisible();
  await expect(page.getByRole('status', { name: /^Repair finished in pool demo$/ })).toBeVisible();
  await expect(page.getByTestId('drives-attention')).toHaveText('1 drive needs attention');
  await expect(page.locator('[data-testid="drive-errors"]', { hasText: /checksum [1-9]/ })).toHaveCount(1);
  qemuIo(uri, 'read -P 0x5a 8M 2M');
  await snap(page, 'checksum-error');

  await auditAccessibility(page);
});

test('every control has a role and a name, in light and dark themes', async ({ page }) => {
  await openDemo(page, app.url);
  await page.getByRole('button', { name: 'Show layout map of demo/archive' }).click();
  await expect(page.getByRole('img', { name: /Layout map of demo\/archive/ })).toBeVisible();
  const roles = await auditAccessibility(page);
  expect(roles.get('button')).toEqual(expect.arrayContaining(['Export demo/archive over NBD', 'Corrupt a block of demo/archive', 'Move disk0 to…', 'Drag disk0']));
  expect(roles.get('meter')).toContain('Space in pool demo');
  expect(roles.get('region')).toEqual(expect.arrayContaining(['Notifications', 'Pools']));
  await page.emulateMedia({ colorScheme: 'dark' });
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(background).toBe('rgb(15, 18, 22)');
  await snap(page, 'dark-theme');
  await page.emulateMedia({ colorScheme: 'light' });
  expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(244, 245, 247)');
});

test('keyboard only: fail and restore a drive, open the plan preview from "Move to…"', async ({ page }) => {
  await openDemo(page, app.url);
  await expect(page.getByRole('listitem', { name: 'disk2' })).toBeVisible();

  await tabTo(page, 'Simulate failure of disk2');
  await page.keyboard.press('Enter');
  await expect(page.getByRole('listitem', { name: 'disk2' }).getByText('Failed', { exact: true })).toBeVisible();
  await tabTo(page, 'Restore disk2');
  await page.keyboard.press('Enter');
  await expect(page.getByRole('listitem', { name: 'disk2' }).getByText('Online', { exact: true })).toBeVisible({ timeout: 30_000 });

  // The keyboard alternative to dragging the spare out of its pool.
  await tabTo(page, 'Move disk5 to…');
  await page.keyboard.press('Enter');
  const menu = page.getByRole('menu', { name: 'Move disk5 to…' });
  await expect(menu).toBeVisible();
  await expect(menu.getByRole('menuitem', { name: 'Remove from pool demo' })).toBeFocused();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Remove the spare disk5 from pool demo' });
  await expect(dialog).toBeVisible();
  // The engine's plan, before anything changes: Confirm is offered, Escape changes nothing.
  await expect(dialog.getByText('Data to move')).toBeVisible({ timeout: 30_000 });
  await expect(dialog.getByRole('button', { name: 'Confirm' })).toBeEnabled();
  await snap(page, 'keyboard-plan-preview');
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
  await expect(page.getByRole('button', { name: 'Move disk5 to…' })).toBeVisible();

  // The drag itself with the keyboard: Space picks the drive up, arrows carry it, Space drops it.
  await tabTo(page, 'Drag disk5');
  await page.keyboard.press('Space');
  const unassigned = page.getByTestId('unassigned-drives');
  await expect(unassigned.getByText('Drop here to evacuate the drive and remove it from its pool')).toBeVisible();
  // Each arrow press carries the drive to the next drop target that way; the zone sits below the pools.
  for (let i = 0; i < 8 && !(await unassigned.getAttribute('class'))!.includes('drop-over'); i++) {
    await page.keyboard.press('ArrowDown');
    await page.waitForTimeout(150); // the page may scroll smoothly to the target before the next press
  }
  await expect(unassigned).toHaveClass(/drop-over/);
  await page.keyboard.press('Space');
  await expect(page.getByRole('dialog', { name: 'Remove the spare disk5 from pool demo' })).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(page.getByRole('listitem', { name: 'disk5' })).toContainText('Spare of demo');
});

test('dragging a drive out of its pool opens the plan preview before anything changes', async ({ page }) => {
  await openDemo(page, app.url);
  const handle = page.getByRole('button', { name: 'Drag disk5', exact: true });
  const target = page.getByTestId('unassigned-drives');
  await handle.scrollIntoViewIfNeeded();
  const from = (await handle.boundingBox())!;
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(from.x + 20, from.y + 20, { steps: 5 });
  await expect(target.getByText('Drop here to evacuate the drive and remove it from its pool')).toBeVisible();
  await target.scrollIntoViewIfNeeded();
  const to = (await target.boundingBox())!;
  await page.mouse.move(to.x + to.width / 2, to.y + to.height / 2, { steps: 10 });
  await page.mouse.up();
  const dialog = page.getByRole('dialog', { name: 'Remove the spare disk5 from pool demo' });
  await expect(dialog).toBeVisible();
  await expect(dialog.getByText('Data to move')).toBeVisible({ timeout: 30_000 });
  await snap(page, 'drag-plan-preview');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole('listitem', { name: 'disk5' })).toContainText('Spare of demo');
});
