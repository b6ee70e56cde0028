/**
 * Summarises a V8 CPU profile (.cpuprofile, as `node --cpu-prof` or the
 * inspector writes): the functions with the most self time, and self time
 * per source file. Used by bench/engine.ts --profile; also runnable alone:
 *
 *   node --import tsx bench/_engine-profile.ts FILE.cpuprofile [TOP]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileLine {
  readonly name: string;
  readonly where: string;
  readonly ms: number;
  readonly percent: number;
}

function shortUrl(url: string): string {
  if (!url) return '(native/VM)';
  const path = url.replace(/^file:\/\//, '');
  if (path.startsWith('node:')) return path;
  const j = path.indexOf('/node_modules/');
  if (j >= 0) return path.slice(j + 1);
  const root = `${process.cwd()}/`;
  return path.startsWith(root) ? path.slice(root.length) : path;
}

export function summarise(file: string, top = 20): { functions: ProfileLine[]; files: ProfileLine[]; totalMs: number; idleMs: number } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const totalUs = profile.endTime - profile.startTime;
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const files = new Map<string, number>();
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    if (name === '(idle)') idleUs += us;
    // tsx emits each module on one line: a line number of 1 says nothing.
    const where = url ? `${shortUrl(url)}${lineNumber > 0 ? `:${lineNumber + 1}` : ''}` : '';
    const key = `${name}@${where}`;
    const entry = fn.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    fn.set(key, entry);
    const f = url ? shortUrl(url) : name.startsWith('(') ? name : '(native/VM)';
    files.set(f, (files.get(f) ?? 0) + us);
  }
  const line = (name: string, where: string, us: number): ProfileLine => ({ name, where, ms: us / 1000, percent: (100 * us) / totalUs });
  return {
    functions: [...fn.values()].sort((a, b) => b.us - a.us).slice(0, top).map((e) => line(e.name, e.where, e.us)),
    files: [...files.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([f, us]) => line(f, '', us)),
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
  };
}

export function printSummary(file: string, top = 20, out: (line: string) => void = console.log): void {
  const s = summarise(file, top);
  out(`  profile ${file}: ${(s.totalMs / 1000).toFixed(1)} s wall, idle ${((100 * s.idleMs) / s.totalMs).toFixed(0)} %`);
  out(`  top self time, by function:`);
  for (const l of s.functions) out(`    ${l.percent.toFixed(1).padStart(5)} %  ${l.ms.toFixed(0).padStart(6)} ms  ${l.name}  ${l.where}`);
  out(`  self time by file:`);
  for (const l of s.files.slice(0, 12)) out(`    ${l.percent.toFixed(1).padStart(5)} %  ${l.ms.toFixed(0).padStart(6)} ms  ${l.name}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    console.error('usage: _engine-profile.ts FILE.cpuprofile [TOP]');
    process.exit(2);
  }
  printSummary(file, Number(top ?? 25));
}
