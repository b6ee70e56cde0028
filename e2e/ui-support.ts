/**
 * Helpers for the UI specs (e2e/ui-*.spec.ts): the demo pool opened in the
 * page, qemu-io over a volume's NBD export, keyboard-only focus moves, an
 * accessibility audit, and numbered screenshots saved as test artifacts.
 */
import { spawnSync } from 'node:child_process';
import { expect, test, type Page } from '@playwright/test';

/** Opens the app and makes sure the demo pool is there (creating it through the UI when it is not). */
export async function openDemo(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await expect(page.getByRole('status', { name: 'Engine connection' })).toHaveText('Connected');
  const create = page.getByRole('button', { name: 'Create the demo pool' });
  const pool = page.getByRole('article', { name: /^Pool demo/ });
  await expect(create.or(pool)).toBeVisible();
  if (await create.isVisible()) await create.click();
  await expect(pool).toBeVisible({ timeout: 60_000 });
}

let shot = 0;
/** Saves a full-page screenshot as an artifact of the running test, numbered in story order. */
export async function snap(page: Page, name: string): Promise<void> {
  shot++;
  await page.screenshot({ path: test.info().outputPath(`${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
}

export function qemuIo(uri: string, ...commands: string[]): string {
  const args = ['-f', 'raw', uri, ...commands.flatMap((c) => ['-c', c])];
  const r = spawnSync('qemu-io', args, { encoding: 'utf8', timeout: 60_000 });
  const output = `${r.stdout}${r.stderr}`;
  if (r.status !== 0 || /Pattern verification failed|error|failed/i.test(output)) {
    throw new Error(`qemu-io ${args.join(' ')} failed (${r.status}):\n${output}`);
  }
  return output;
}

/** Presses Tab until the focused element has this accessible name (keyboard only: no clicks, no .focus()). */
export async function tabTo(page: Page, name: string | RegExp, maxPresses = 300): Promise<void> {
  for (let i = 0; i < maxPresses; i++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      if (!el) return '';
      const labelledBy = el.getAttribute('aria-labelledby');
      return (
        el.getAttribute('aria-label') ??
        (labelledBy ? labelledBy.split(' ').map((id) => document.getElementById(id)?.textContent ?? '').join(' ') : el.textContent ?? '')
      ).trim();
    });
    if (typeof name === 'string' ? focused === name : name.test(focused)) return;
  }
  throw new Error(`Tab never reached a control named ${String(name)}`);
}

const NAMED_ROLES = new Set(['button', 'textbox', 'combobox', 'listbox', 'menuitem', 'menu', 'checkbox', 'radio', 'link', 'progressbar', 'meter', 'img', 'dialog', 'region', 'group', 'table', 'list', 'alert', 'status', 'spinbutton', 'slider', 'tab']);
const MUST_BE_NAMED = new Set(['button', 'textbox', 'combobox', 'menuitem', 'menu', 'checkbox', 'radio', 'link', 'progressbar', 'meter', 'img', 'dialog', 'spinbutton', 'slider']);

/**
 * Every control and picture in the accessibility tree (Chromium's own, over
 * CDP) has a role and a non-empty name. Returns the roles seen, for checks.
 */
export async function auditAccessibility(page: Page): Promise<Map<string, string[]>> {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as { nodes: Array<{ ignored: boolean; role?: { value: string }; name?: { value: string } }> };
    const byRole = new Map<string, string[]>();
    const unnamed: string[] = [];
    for (const node of nodes) {
      if (node.ignored) continue;
      const role = node.role?.value ?? '';
      const name = (node.name?.value ?? '').trim();
      if (!NAMED_ROLES.has(role)) continue;
      byRole.set(role, [...(byRole.get(role) ?? []), name]);
      if (MUST_BE_NAMED.has(role) && name === '') unnamed.push(role);
    }
    expect(unnamed, `controls without an accessible name: ${unnamed.join(', ')}`).toEqual([]);
    return byRole;
  } finally {
    await cdp.detach();
  }
}
