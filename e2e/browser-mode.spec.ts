import { expect, test } from '@playwright/test';
import { startApp, type RunningApp } from './spindle-app.js';

let app: RunningApp;

test.beforeAll(async () => {
  app = await startApp();
});

test.afterAll(async () => {
  await app?.stop();
});

test('npm start says why it serves browser mode and prints the URL', () => {
  expect(app.output()).toMatch(/Electron is not available \(.+\); serving the same UI in browser mode/);
  expect(app.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=/);
});

test('the page shows the engine version and a live uptime', async ({ page }) => {
  await page.goto(app.url);
  await expect(page.getByRole('heading', { name: 'Spindle' })).toBeVisible();
  await expect(page.getByRole('status', { name: 'Engine connection' })).toHaveText('Connected');
  await expect(page.getByTestId('engine-version')).toHaveText(/^\d+\.\d+\.\d+/);
  const uptime = page.getByTestId('engine-uptime');
  await expect(uptime).toHaveText(/^\d+/);
  const first = await uptime.textContent();
  await expect(uptime).not.toHaveText(first!, { timeout: 5_000 });
  await page.screenshot({ path: test.info().outputPath('engine-status.png') });
});

test('the page and the bridge refuse a visit without the token', async ({ page }) => {
  const response = await page.goto(app.origin + '/');
  expect(response?.status()).toBe(403);
  await expect(page.locator('body')).toContainText('token');
  const wrong = await page.goto(app.origin + '/?token=not-the-token');
  expect(wrong?.status()).toBe(403);
  // A page served elsewhere cannot open the bridge even with the token.
  const status = await page.evaluate(async (bridge) => {
    return await new Promise<string>((resolve) => {
      const ws = new WebSocket(bridge);
      ws.onopen = () => resolve('open');
      ws.onerror = () => resolve('refused');
    });
  }, `${app.origin.replace('http', 'ws')}/bridge?token=${new URL(app.url).searchParams.get('token')}`);
  // The 403 page lives on our origin, so use a foreign origin: about:blank has an opaque one.
  await page.goto('about:blank');
  const foreign = await page.evaluate(async (bridge) => {
    return await new Promise<string>((resolve) => {
      const ws = new WebSocket(bridge);
      ws.onopen = () => resolve('open');
      ws.onerror = () => resolve('refused');
    });
  }, `${app.origin.replace('http', 'ws')}/bridge?token=${new URL(app.url).searchParams.get('token')}`);
  expect(foreign).toBe('refused');
  // From our own origin with the token, the bridge opens (the control for the refusal above).
  expect(status).toBe('open');
});
