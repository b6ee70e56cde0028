/** `spindle demo`: the demo pool of image files (created once, reported after). */
import type { Command } from 'commander';
import { print, withEngineHost, type Io, type JsonOption } from './command-support.js';
import { poolStatusText } from './status-text.js';

export function addDemoCommand(program: Command, io: Io): void {
  program
    .command('demo')
    .description('create the demo pool of image files in the state folder (once; later it reports it)')
    .option('--json', 'print JSON')
    .action(async (options: JsonOption) => {
      const demo = await withEngineHost((client) => client.request('demo-create', {}));
      const head = demo.created ? `created the demo pool on ${demo.images.length} image files` : 'the demo pool already exists';
      print(io, options, demo, `${head}\n${poolStatusText(demo.pool)}`);
    });
}
