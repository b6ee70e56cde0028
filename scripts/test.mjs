#!/usr/bin/env node
// `npm test`: installs what is missing, then typecheck + build, lint, unit
// tests (vitest), end-to-end tests (Playwright in Debian's Chromium), and ends
// with one line summing every runner: `N passed, N failed, N skipped`.
// Typecheck and lint count as one check each.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from './build.mjs';
import { lint } from './lint.mjs';
import { ensureAll, root } from './setup-lib.mjs';

const totals = { passed: 0, failed: 0, skipped: 0 };
const timings = [];
const resultsDir = join(root, 'dist', 'test-results');

function step(name, fn) {
  const start = Date.now();
  console.error(`\n== ${name}`);
  try {
    fn();
  } catch (error) {
    console.error(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    totals.failed++;
  }
  timings.push(`${name} ${((Date.now() - start) / 1000).toFixed(1)} s`);
}

function check(name, ok) {
  if (ok) totals.passed++;
  else {
    totals.failed++;
    console.error(`FAILED: ${name}`);
  }
}

function readJson(file) {
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
}

/** Playwright's skip annotations, so a skip always says why. */
function skipReasons(report) {
  const reasons = [];
  const walk = (suite) => {
    for (const spec of suite.specs ?? []) {
      for (const t of spec.tests ?? []) {
        if (t.status !== 'skipped') continue;
        const note = (t.annotations ?? []).find((a) => a.type === 'skip');
        reasons.push(`${spec.title}: ${note?.description ?? 'no reason given'}`);
      }
    }
    for (const child of suite.suites ?? []) walk(child);
  };
  for (const suite of report.suites ?? []) walk(suite);
  return reasons;
}

const bin = (name) => join(root, 'node_modules', '.bin', name);
let setupOk = true;
let built = false;

step('setup', () => {
  try {
    ensureAll();
  } catch (error) {
    setupOk = false;
    throw error;
  }
});

if (setupOk) {
  rmSync(resultsDir, { recursive: true, force: true });
  mkdirSync(resultsDir, { recursive: true });

  step('typecheck and build', () => {
    const result = build();
    built = result.ok;
    check(`typecheck and build (${result.step ?? 'ok'})`, result.ok);
  });

  step('lint (eslint, layering)', () => {
    const result = lint();
    check(`lint (${result.failed?.join(', ') || 'ok'})`, result.ok);
  });

  step('unit tests (vitest)', () => {
    const output = join(resultsDir, 'vitest.json');
    const r = spawnSync(bin('vitest'), ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${output}`], {
      cwd: root,
      stdio: 'inherit',
    });
    const report = readJson(output);
    if (!report) throw new Error(`vitest wrote no report (exit ${r.status})`);
    totals.passed += report.numPassedTests;
    totals.failed += report.numFailedTests;
    totals.skipped += report.numPendingTests + report.numTodoTests;
    // A test file that fails to load has no tests to count; count the file.
    const brokenFiles = (report.testResults ?? []).filter((f) => f.status === 'failed' && f.assertionResults.length === 0);
    totals.failed += brokenFiles.length;
    if (r.status !== 0 && report.numFailedTests === 0 && brokenFiles.length === 0) totals.failed++;
  });

  step('end-to-end tests (Playwright)', () => {
    if (!built) throw new Error('skipped because the build failed');
    const output = join(resultsDir, 'playwright.json');
    const r = spawnSync(bin('playwright'), ['test', '-c', 'e2e/playwright.config.ts'], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, SPINDLE_PLAYWRIGHT_JSON: output },
    });
    const report = readJson(output);
    if (!report) throw new Error(`playwright wrote no report (exit ${r.status})`);
    const { expected = 0, unexpected = 0, skipped = 0, flaky = 0 } = report.stats ?? {};
    totals.passed += expected;
    totals.failed += unexpected + flaky;
    totals.skipped += skipped;
    if (r.status !== 0 && unexpected + flaky === 0) totals.failed++;
    for (const reason of skipReasons(report)) console.error(`skipped: ${reason}`);
  });
}

console.error(`\ntime: ${timings.join(', ')}`);
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed > 0 ? 1 : 0);
