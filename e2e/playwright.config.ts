import { defineConfig } from '@playwright/test';

// Debian's Chromium: Playwright's own browser download is unavailable here.
export const CHROMIUM = process.env.SPINDLE_CHROMIUM ?? '/usr/bin/chromium';

export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.ts',
  outputDir: '../test-results/e2e',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: process.env.SPINDLE_PLAYWRIGHT_JSON
    ? [['list'], ['json', { outputFile: process.env.SPINDLE_PLAYWRIGHT_JSON }]]
    : [['list']],
  use: {
    browserName: 'chromium',
    headless: true,
    screenshot: 'only-on-failure',
    trace: 'off',
    launchOptions: {
      executablePath: CHROMIUM,
      // Root has no user namespaces for Chromium's sandbox here; the closed
      // network makes background connections fail noisily, so turn them off.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
