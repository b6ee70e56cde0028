/**
 * The rest of issue 8's story, which needs the engine host's drive
 * inventory, plans and jobs (contract requests drives-list, plan, job-start,
 * job-list): drag an unassigned drive into the demo pool and confirm the
 * plan; create a volume and write to it over NBD; fail a drive; click
 * Rebuild, confirm, watch progress, rate and ETA move; see the pool healthy
 * again; verify the data with qemu-io. And the keyboard-only version of the
 * drag.
 *
 * Until the engine host implements those requests it answers "not available
 * yet", the page says so, and these tests mark themselves fixme with that
 * reason; they run as soon as the requests exist.
 */
import { expect, test, type Page } from '@playwright/test';
import { startApp, type RunningApp } from './spindle-app.js';
import { openDemo, qemuIo, snap, tabTo } from './ui-support.js';

let app: RunningApp;

test.describe.configure({ mode: 'serial' });
test.setTimeout(300_000);

// A fresh app (state folder, engine host, demo pool) for each story: the
// first leaves its failed drive unassigned but still labelled for the pool
// (it adds it back, erasing that label, only once the box is ticked).
test.beforeEach(async () => {
  app = await startApp();
});

test.afterEach(async () => {
  await app?.stop();
});

/** Marks the test fixme, with the engine host's own words, while a request it needs is not there yet. */
async function needsBackend(page: Page): Promise<void> {
  const jobs = page.getByRole('region', { name: 'Jobs' });
  await expect(jobs.getByText(/No jobs|Jobs/).first()).toBeVisible();
  for (const where of [jobs, page.getByTestId('unassigned-drives')]) {
    const missing = where.getByText(/not available yet: [\w-]+/);
    if (await missing.count()) {
      const reason = /not available yet: [\w-]+/.exec((await missing.first().textContent()) ?? '')![0];
      const why = `needs the engine host's drive inventory, plans and jobs; it answers "${reason}"`;
      // npm test prints the reasons of 'skip' annotations; say it there too.
      test.info().annotations.push({ type: 'skip', description: why });
      test.fixme(true, why);
    }
  }
}

async function firstUnassignedDrive(page: Page): Promise<string> {
  const list = page.getByRole('list', { name: 'Unassigned drives' }).getByRole('listitem');
  await expect(list.first(), 'the story needs an unassigned drive in the inventory').toBeVisible();
  return (await list.first().getByRole('heading').textContent())!;
}

async function confirmPlan(page: Page, title: string | RegExp): Promise<void> {
  const dialog = page.getByRole('dialog', { name: title });
  await expect(dialog).toBeVisible();
  await expect(dialog.getByText('Data to move')).toBeVisible({ timeout: 30_000 });
  await expect(dialog.getByText('Redundancy after')).toBeVisible();
  await expect(dialog.getByRole('table', { name: 'Space per drive' })).toBeVisible();
  await snap(page, 'plan');
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(dialog).toBeHidden();
}

/** Waits for a job to finish, checking on the way that its progress, rate and ETA move. */
async function watchJob(page: Page, title: RegExp): Promise<void> {
  const job = page.getByRole('list', { name: 'Jobs' }).getByRole('listitem', { name: title });
  await expect(job).toBeVisible();
  const bar = job.getByRole('progressbar');
  const seen = new Set<string>();
  const rates = new Set<string>();
  for (let i = 0; i < 600; i++) {
    // Ended once its report shows ("Done" alone is also the label of the bytes done).
    if ((await job.getByRole('group', { name: /^Report of/ }).count()) > 0) break;
    seen.add((await bar.getAttribute('aria-valuenow')) ?? '');
    rates.add((await job.locator('dd').nth(1).textContent()) ?? '');
    if (i === 2) await snap(page, 'job-running');
    await page.waitForTimeout(200);
  }
  await expect(job.getByRole('heading').locator('..').getByText('Done', { exact: true }).first()).toBeVisible();
  expect(seen.size, 'the progress bar moved').toBeGreaterThan(1);
  expect(rates.size, 'the rate was reported').toBeGreaterThan(1);
  await expect(job.getByRole('group', { name: /^Report of/ })).toContainText(/Moved/);
}

test('the full story: drag a drive into the pool, volume over NBD, failure, one-click rebuild, data intact', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await openDemo(page, app.url);
  await needsBackend(page);

  // Drag an unassigned drive into the pool; the plan comes first.
  const drive = await firstUnassignedDrive(page);
  const handle = page.getByRole('button', { name: `Drag ${drive}`, exact: true });
  const pool = page.getByRole('article', { name: /^Pool demo/ });
  await handle.scrollIntoViewIfNeeded();
  const from = (await handle.boundingBox())!;
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(from.x + 20, from.y + 20, { steps: 5 });
  await pool.scrollIntoViewIfNeeded();
  const to = (await pool.boundingBox())!;
  await page.mouse.move(to.x + to.width / 2, to.y + 40, { steps: 10 });
  await page.mouse.up();
  await confirmPlan(page, `Add ${drive} to pool demo`);
  await expect(page.getByRole('list', { name: 'Drives of pool demo' }).getByRole('listitem', { name: drive })).toBeVisible({ timeout: 60_000 });
  await snap(page, 'drive-added');
  // Adding a drive starts a rebalance onto it; let it finish (the rebuild below would wait for it).
  const rebalance = page.getByRole('list', { name: 'Jobs' }).getByRole('listitem', { name: /rebalance/i });
  // (Its report appears only once it has ended; "Done" alone is also the label of the bytes done.)
  await expect(rebalance.getByRole('group', { name: /^Report of/ })).toContainText(/Moved/, { timeout: 60_000 });

  // A new volume, written over NBD.
  await pool.getByRole('button', { name: 'New volume in pool demo' }).click();
  const form = page.getByRole('form', { name: 'New volume in pool demo' });
  await form.getByLabel('Name').fill('story');
  await form.getByLabel('Size (MiB)').fill('64');
  await form.getByLabel('Layout').selectOption('raid1');
  await form.getByRole('button', { name: 'Create volume' }).click();
  await page.getByRole('button', { name: 'Export demo/story over NBD' }).click();
  const uri = (await page.getByTestId('volume-demo/story').locator('code').getAttribute('title'))!;
  qemuIo(uri, 'write -P 0xa5 0 16M', 'flush');

  // Fail a drive that holds it.
  await page.getByRole('button', { name: 'Show layout map of demo/story' }).click();
  const map = page.getByRole('region', { name: 'Layout map of demo/story' });
  await map.getByText('Slabs per drive').click();
  let victim = '';
  for (const row of await map.getByRole('table').getByRole('row').all()) {
    const cells = await row.getByRole('cell').allTextContents();
    if (cells.length > 1 && Number(cells[1]) > 0) {
      victim = (await row.getByRole('rowheader').textContent())!;
      break;
    }
  }
  await page.getByRole('button', { name: `Simulate failure of ${victim}` }).click();
  await expect(pool.getByText('Degraded', { exact: true }).first()).toBeVisible();
  await expect(map.getByTestId('layout-map-summary')).toContainText(/chunks? degraded/);
  await snap(page, 'degraded');

  // The plan is one click away; Cancel changes nothing.
  await pool.getByRole('button', { name: 'Show the rebuild plan of pool demo' }).click();
  const plan = page.getByRole('dialog', { name: 'Rebuild pool demo' });
  await expect(plan.getByText('Data to move')).toBeVisible({ timeout: 30_000 });
  await snap(page, 'rebuild-plan');
  await plan.getByRole('button', { name: 'Cancel' }).click();
  await expect(plan).toBeHidden();

  // One click: Rebuild, with the recommended plan.
  await pool.getByRole('button', { name: 'Rebuild', exact: true }).click();
  await watchJob(page, /Rebuild/);
  await expect(pool.getByText('Online', { exact: true }).first()).toBeVisible({ timeout: 60_000 });
  await expect(page.getByRole('status', { name: 'Pool health' })).toContainText('All pools healthy');
  await expect(map.getByTestId('layout-map-summary')).toContainText('All chunks fully redundant');
  await snap(page, 'rebuilt');
  qemuIo(uri, 'read -P 0xa5 0 16M');

  // The failed drive left the pool still carrying its label: adding it back says what it erases, and asks first.
  const unassigned = page.getByRole('list', { name: 'Unassigned drives' });
  await expect(unassigned.getByRole('listitem', { name: victim })).toBeVisible({ timeout: 30_000 });
  await page.getByRole('button', { name: `Move ${victim} to…` }).click();
  await page.getByRole('menuitem', { name: 'Add to pool demo' }).click();
  const add = page.getByRole('dialog', { name: `Add ${victim} to pool demo` });
  await expect(add.getByText('This drive holds data that adding it would erase:')).toBeVisible({ timeout: 30_000 });
  await expect(add.getByRole('listitem').first()).toContainText('holds the label of member');
  await expect(add.getByRole('button', { name: 'Confirm' })).toBeDisabled();
  await snap(page, 'add-asks-before-erasing');
  await add.getByRole('checkbox', { name: 'Erase it and add it to pool demo' }).check();
  const erase = page.getByRole('dialog', { name: `Add ${victim} to pool demo` });
  await expect(erase.getByText('Confirming erases:')).toBeVisible({ timeout: 30_000 });
  await expect(erase.getByText('Data to move')).toBeVisible({ timeout: 30_000 });
  await erase.getByRole('button', { name: 'Confirm' }).click();
  await expect(erase).toBeHidden();
  await expect(page.getByRole('list', { name: 'Drives of pool demo' }).getByRole('listitem', { name: victim })).toBeVisible({ timeout: 60_000 });
});

test('keyboard only: move an unassigned drive into the pool through "Move to…" and confirm the plan', async ({ page }) => {
  await openDemo(page, app.url);
  await needsBackend(page);
  const drive = await firstUnassignedDrive(page);
  await tabTo(page, `Move ${drive} to…`);
  await page.keyboard.press('Enter');
  await expect(page.getByRole('menuitem', { name: 'Add to pool demo' })).toBeFocused();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: `Add ${drive} to pool demo` });
  await expect(dialog.getByText('Data to move')).toBeVisible({ timeout: 30_000 });
  // Tab from the top of the dialog to Confirm, and press it.
  await tabTo(page, 'Confirm', 20);
  await page.keyboard.press('Enter');
  await expect(dialog).toBeHidden();
  await expect(page.getByRole('list', { name: 'Drives of pool demo' }).getByRole('listitem', { name: drive })).toBeVisible({ timeout: 60_000 });
});
