/**
 * The engine host's list of pools to import at start (`pools.json` in the
 * state directory), and the volumes each one exports.
 *
 * Written atomically: the whole list goes to a temp file in the same folder,
 * which is flushed and renamed over the old one, and the folder is flushed
 * so the rename itself survives a crash. A reader sees the old list or the
 * new one, never a mix. Writes are serialised, so the last one called wins.
 *
 * The members' own labels are the truth about a pool; this file only says
 * where to look for them (member URIs) and what the user asked the host to do
 * with it (demo flag, exports).
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import * as v from 'valibot';

const FILE_NAME = 'pools.json';
const FORMAT_VERSION = 1;

const savedPoolSchema = v.object({
  name: v.string(),
  uuid: v.string(),
  members: v.array(v.string()),
  demo: v.boolean(),
  exports: v.array(v.object({ volume: v.string(), tcpPort: v.optional(v.number()) })),
});

const savedStateSchema = v.object({
  version: v.literal(FORMAT_VERSION),
  pools: v.array(savedPoolSchema),
});

export type SavedPool = v.InferOutput<typeof savedPoolSchema>;

export class PoolStateFile {
  readonly path: string;
  private writing: Promise<void> = Promise.resolve();

  constructor(stateDir: string) {
    this.path = join(stateDir, FILE_NAME);
  }

  /** The saved pools; none when the file does not exist. Throws, naming the file, when it is unreadable. */
  async read(): Promise<SavedPool[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new Error(`${this.path} is not valid JSON`);
    }
    const parsed = v.safeParse(savedStateSchema, raw);
    if (!parsed.success) throw new Error(`${this.path} is not a list of pools this Spindle understands`);
    return parsed.output.pools;
  }

  write(pools: readonly SavedPool[]): Promise<void> {
    const run = this.writing.then(() => this.writeNow(pools));
    this.writing = run.catch(() => {});
    return run;
  }

  private async writeNow(pools: readonly SavedPool[]): Promise<void> {
    const temp = `${this.path}.${process.pid}.tmp`;
    const body = JSON.stringify({ version: FORMAT_VERSION, pools }, null, 2) + '\n';
    // A first pool in a fresh state directory: make it (private, like everything in it).
    await mkdir(join(this.path, '..'), { recursive: true, mode: 0o700 });
    const file = await open(temp, 'w', 0o600);
    try {
      await file.writeFile(body, 'utf8');
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await rename(temp, this.path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
    const dir = await open(join(this.path, '..'), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
