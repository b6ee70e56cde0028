/**
 * Helpers for bench/engine.ts: starting and stopping servers by PID, waiting
 * for an NBD socket to answer, and running fio's nbd engine on one or several
 * exports at once. Adapted from bench/nbd.ts (copied, not imported: that
 * file is another benchmark's entry point).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';

const MiB = 1024 * 1024;

/** Every server this process started and has not yet seen exit. */
export const children = new Set<ChildProcess>();

/** SIGKILLs every server still running (by its PID; never by name). */
export function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

/**
 * Stop every server by PID on exit; on SIGINT/SIGTERM also remove the temp
 * folder `dir` before leaving. Returns what takes the signal handlers off.
 */
export function cleanUpOnExit(dir: string): () => void {
  const onSignal = (): void => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAll);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

export function sh(cmd: string, argv: string[], timeoutMs = 300_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { timeout: timeoutMs, maxBuffer: 64 * MiB }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${argv.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(String(stdout));
    });
  });
}

// Client flags (FIXED_NEWSTYLE) then IHAVEOPT, NBD_OPT_ABORT, length 0.
const ABORT_PROBE = Buffer.from('00000001' + '49484156454f5054' + '00000002' + '00000000', 'hex');

/** Resolves once `sock` answers with an NBD greeting (probed politely: greeting, then OPT_ABORT). */
export async function waitSocket(sock: string, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before listening on ${sock}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(sock);
      let got = 0;
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= 18 && got - d.length < 18) s.write(ABORT_PROBE);
      });
      s.once('close', () => resolve(got >= 18));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${sock}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Started {
  readonly child: ChildProcess;
  /** Everything the child wrote on stdout so far. */
  readonly stdout: () => string;
}

/** Spawns a server, tracked for cleanup; stderr goes to ours. */
export function spawnServer(cmd: string, argv: string[], env?: NodeJS.ProcessEnv): Started {
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'], env: env ?? process.env });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => (out += d));
  return { child, stdout: () => out };
}

/**
 * Waits until the child's stdout has a whole line matching `pattern`, among
 * those written after stdout offset `since`; returns that line.
 */
export async function waitLine(started: Started, pattern: RegExp, timeoutMs = 120_000, since = 0): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = started.stdout().slice(since);
    const line = text.slice(0, text.lastIndexOf('\n') + 1).split('\n').find((l) => pattern.test(l));
    if (line !== undefined) return line;
    const { child } = started;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`child exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM by PID, SIGKILL after `graceMs`; resolves when it has exited. */
export async function stopServer(child: ChildProcess, graceMs = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

export interface FioPattern {
  readonly name: string;
  readonly rw: 'read' | 'write' | 'randread' | 'randwrite';
  readonly bs: string;
  readonly iodepth: number;
  readonly metric: 'MiB/s' | 'IOPS';
}

export interface FioTarget {
  readonly uri: string;
  readonly size: number;
}

export interface FioOptions {
  /** Seconds of a time-based run; undefined: one pass over `size` (a fill). */
  readonly runtime?: number;
  /** Flush (NBD_CMD_FLUSH) when done. */
  readonly endFsync?: boolean;
}

/**
 * Runs one fio job per target, all at once (one fio process), and returns
 * the sum over the jobs of the pattern's metric, plus each job's figure.
 */
export async function fio(targets: readonly FioTarget[], p: FioPattern, options: FioOptions = {}): Promise<{ total: number; perJob: number[] }> {
  const argv = [
    '--ioengine=nbd',
    `--rw=${p.rw}`,
    `--bs=${p.bs}`,
    `--iodepth=${p.iodepth}`,
    '--output-format=json',
    ...(options.runtime !== undefined ? [`--runtime=${options.runtime}`, '--time_based'] : []),
    ...(options.endFsync ? ['--end_fsync=1'] : []),
  ];
  targets.forEach((t, i) => argv.push(`--name=job${i}`, `--uri=${t.uri}`, `--size=${t.size}`));
  const timeout = options.runtime !== undefined ? (options.runtime + 60) * 1000 : 600_000;
  const out = await sh('fio', argv, timeout);
  // fio prints "connected to NBD server" and such before its JSON.
  const jobs = JSON.parse(out.slice(out.indexOf('{'))).jobs as Array<Record<'read' | 'write', { bw: number; iops: number; io_bytes: number }>>;
  const perJob = jobs.map((job) => {
    const side = p.rw.includes('read') ? job.read : job.write;
    return p.metric === 'IOPS' ? side.iops : side.bw / 1024;
  });
  return { total: perJob.reduce((a, b) => a + b, 0), perJob };
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux; 0 elsewhere). */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

export function fmt(v: number, metric: string): string {
  return metric === 'IOPS' ? `${Math.round(v).toLocaleString('en-US')}` : `${v.toFixed(0)}`;
}
