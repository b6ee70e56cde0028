/**
 * UI frame-rate bench: the real renderer (built by vite, served by browser
 * mode) in Debian's Chromium, fed a simulated 24-drive pool with 4 live jobs
 * by the bench fixture (bench/_ui-fixture.ts, installed as `window.spindle`;
 * no engine runs). With the drives, pools, jobs and a 24-column layout map
 * on screen it counts animation frames and long tasks (> 50 ms, from the
 * Long Tasks API) for a while, and prints them against the targets:
 * ≥ 55 frames per second, no task over 50 ms.
 *
 *   npm run bench -- ui [--seconds N] [--drives N] [--jobs N] [--chunks N]
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from '@playwright/test';
import { startBrowserMode } from '../main/service/browser-mode.js';
import { installBenchFixture, type FixtureOptions } from './_ui-fixture.js';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : def;
};
const SECONDS = opt('seconds', 10);
const WARMUP_SECONDS = 2;
const fixture: FixtureOptions = { drives: opt('drives', 24), jobs: opt('jobs', 4), chunksPerVolume: opt('chunks', 400) };
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.SPINDLE_CHROMIUM ?? '/usr/bin/chromium';

interface Measured {
  frames: number;
  seconds: number;
  worstFrameMs: number;
  framesOver20Ms: number;
  longTasks: number[];
  /** Sum of layout-shift scores (not caused by input) while events stream in: 0 means nothing moved. */
  layoutShift: number;
}

async function main(): Promise<void> {
  console.log('building the renderer…');
  const built = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
  if (built.status !== 0) throw new Error('the build failed');

  // Browser mode serves the page; the bridge is never used (the fixture answers), so its socket need not exist.
  const dir = await mkdtemp(path.join(tmpdir(), 'spindle-bench-ui-'));
  const server = await startBrowserMode({ socketPath: path.join(dir, 'no-engine.sock'), rendererDir: path.join(root, 'dist', 'renderer') });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    // tsx compiles with esbuild's keepNames, which wraps functions in __name(): the page needs it too.
    await page.addInitScript({ content: 'globalThis.__name = (target) => target;' });
    await page.addInitScript(installBenchFixture, fixture);
    await page.goto(server.url);
    await page
      .getByRole('button', { name: 'Show layout map of bench/vm-images' })
      .click({ timeout: 30_000 })
      .catch((error: Error) => {
        throw new Error(`the page did not show the simulated pool: ${errors.join(' | ') || error.message}`);
      });
    await page.getByRole('img', { name: /Layout map of bench\/vm-images/ }).waitFor();
    await page.getByRole('list', { name: 'Jobs' }).getByRole('listitem').nth(fixture.jobs - 1).waitFor();

    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const metrics = async (): Promise<Record<string, number>> =>
      Object.fromEntries(((await cdp.send('Performance.getMetrics')) as { metrics: Array<{ name: string; value: number }> }).metrics.map((m) => [m.name, m.value]));
    const loadBefore = os.loadavg()[0]!;
    let before: Record<string, number> = {};
    setTimeout(() => void metrics().then((m) => (before = m)), WARMUP_SECONDS * 1000);
    const result = await page.evaluate(
      async ({ warmup, seconds }) => {
        const longTasks: number[] = [];
        new PerformanceObserver((list) => {
          for (const entry of list.getEntries()) longTasks.push(entry.duration);
          // The bench's tsconfig has Node's types, which do not know the browser's entry types.
        }).observe({ type: 'longtask' } as never);
        let layoutShift = 0;
        new PerformanceObserver((list) => {
          for (const entry of list.getEntries() as unknown as Array<{ value: number; hadRecentInput: boolean }>) if (!entry.hadRecentInput) layoutShift += entry.value;
        }).observe({ type: 'layout-shift' } as never);
        await new Promise((r) => setTimeout(r, warmup * 1000));
        longTasks.length = 0;
        layoutShift = 0;
        const raf = (globalThis as unknown as { requestAnimationFrame(callback: (now: number) => void): number }).requestAnimationFrame.bind(globalThis);
        return await new Promise<Measured>((resolve) => {
          let frames = 0;
          let worst = 0;
          let over20 = 0;
          const start = performance.now();
          let last = start;
          const tick = (now: number): void => {
            frames++;
            worst = Math.max(worst, now - last);
            if (now - last > 20) over20++;
            last = now;
            if (now - start < seconds * 1000) raf(tick);
            else resolve({ frames, seconds: (now - start) / 1000, worstFrameMs: worst, framesOver20Ms: over20, longTasks: [...longTasks], layoutShift });
          };
          raf(tick);
        });
      },
      { warmup: WARMUP_SECONDS, seconds: SECONDS },
    );
    const after = await metrics();
    const busy = (name: string) => ((after[name]! - before[name]!) * 1000) / result.seconds;
    const jobsMoved = await page.getByRole('list', { name: 'Jobs' }).getByRole('progressbar').first().getAttribute('aria-valuenow');
    const sparklines = await page.locator('.sparkline svg').count();
    const screenshot = path.join(root, 'test-results', 'bench-ui.png');
    await page.screenshot({ path: screenshot, fullPage: true });

    const fps = result.frames / result.seconds;
    const maxTask = result.longTasks.length ? Math.max(...result.longTasks) : 0;
    console.log(`\nUI bench: ${fixture.drives} drives, ${fixture.jobs} jobs (10 progress events/s each), ${fixture.chunksPerVolume} chunks per volume, layout map open`);
    console.log(`  sparklines drawn: ${sparklines}; first job at ${jobsMoved} %${errors.length ? `; page errors: ${errors.join(' | ')}` : ''}`);
    console.log(`  machine load average: ${loadBefore.toFixed(1)} → ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores (other work on the machine stretches frames and tasks)`);
    console.log(
      `  main thread busy: ${busy('TaskDuration').toFixed(0)} ms per second (script ${busy('ScriptDuration').toFixed(0)}, style ${busy('RecalcStyleDuration').toFixed(0)}, layout ${busy('LayoutDuration').toFixed(0)})`,
    );
    console.log(`  frames: ${result.frames} in ${result.seconds.toFixed(1)} s = ${fps.toFixed(1)} fps (target ≥ 55) ${fps >= 55 ? 'OK' : 'MISSED'}`);
    console.log(`  worst frame gap: ${result.worstFrameMs.toFixed(1)} ms; frames later than 20 ms: ${result.framesOver20Ms}`);
    console.log(`  long tasks (> 50 ms): ${result.longTasks.length}${result.longTasks.length ? `, longest ${maxTask.toFixed(0)} ms` : ''} (target: none) ${result.longTasks.length === 0 ? 'OK' : 'MISSED'}`);
    console.log(`  layout shift while updating: ${result.layoutShift.toFixed(4)} (target 0: nothing jumps) ${result.layoutShift < 0.001 ? 'OK' : 'MISSED'}`);
    console.log(`  screenshot: ${path.relative(root, screenshot)}`);
    if (errors.length) process.exitCode = 1;
  } finally {
    await browser.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
