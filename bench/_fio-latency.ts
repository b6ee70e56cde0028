/**
 * A foreground for the jobs benchmarks (bench/jobs.ts, bench/_governor-curve.ts):
 * fio 4 KiB random reads at QD1 over NBD, stoppable at any time, with the
 * latency percentiles a governor is judged by.
 */
import { spawn } from 'node:child_process';

export interface FioResult {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly iops: number;
}

export interface Fio {
  /** Stops fio now (SIGINT: it writes its results) and reads them. */
  readonly stop: () => Promise<FioResult>;
  /** Waits for fio's own end (its runtime). */
  readonly finished: () => Promise<FioResult>;
}

/** fio 4 KiB random reads at QD1 over NBD until stopped (or `seconds`). */
export function fioRandRead(uri: string, seconds: number): Fio {
  const child = spawn('fio', ['--name=fg', '--ioengine=nbd', `--uri=${uri}`, '--rw=randread', '--bs=4k', '--iodepth=1', `--runtime=${seconds}`, '--time_based', '--output-format=json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const results = async (): Promise<FioResult> => {
    await exited;
    if (!out.includes('{')) throw new Error(`fio wrote no results (exit ${child.exitCode ?? child.signalCode}): ${out}`);
    const json = JSON.parse(out.slice(out.indexOf('{'))) as { jobs: Array<{ read: { iops: number; clat_ns: { percentile: Record<string, number> } } }> };
    const read = json.jobs[0]!.read;
    const ms = (percentile: string): number => read.clat_ns.percentile[percentile]! / 1e6;
    return { p50Ms: ms('50.000000'), p99Ms: ms('99.000000'), iops: read.iops };
  };
  return {
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      return results();
    },
    finished: results,
  };
}
