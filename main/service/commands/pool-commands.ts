/** `spindle pool create|import|export|status|list`. */
import { Option, type Command } from 'commander';
import { collect, parseSizeArgument, print, toMemberUri, withEngineHost, type Io, type JsonOption , commandGroup } from './command-support.js';
import { poolListText, poolStatusText } from './status-text.js';

export function addPoolCommands(program: Command, io: Io): void {
  const pool = commandGroup(program, 'pool', 'create, import, export and inspect pools');

  pool
    .command('create')
    .description('create a pool on new members (paths or URIs; their contents are lost)')
    .argument('<name>', 'pool name')
    .argument('<members...>', 'members: image file paths, file:PATH, nbd+unix:///EXPORT?socket=PATH or nbd://HOST:PORT/EXPORT')
    .option('--spare <member>', 'a spare member (repeat for more)', collect, [])
    .addOption(new Option('--slab-size <size>', 'slab size, e.g. 256M (default 256 MiB)').argParser(parseSizeArgument('--slab-size')))
    .option('--demo', 'mark it a demo/test pool (allows simulated corruption)')
    .option('--force', 'take members labelled for another pool')
    .option('--json', 'print JSON')
    .action(async (name: string, members: string[], options: JsonOption & { spare: string[]; slabSize?: number; demo?: boolean; force?: boolean }) => {
      const params = {
        name,
        members: members.map(toMemberUri),
        ...(options.spare.length > 0 ? { spares: options.spare.map(toMemberUri) } : {}),
        ...(options.slabSize !== undefined ? { slabSize: options.slabSize } : {}),
        ...(options.demo ? { demo: true } : {}),
        ...(options.force ? { force: true } : {}),
      };
      const status = await withEngineHost((client) => client.request('pool-create', params));
      print(io, options, status, poolStatusText(status));
    });

  pool
    .command('import')
    .description('import the pool found on these members')
    .argument('<members...>', 'members: paths or URIs')
    .option('--demo', 'mark it a demo/test pool')
    .option('--json', 'print JSON')
    .action(async (members: string[], options: JsonOption & { demo?: boolean }) => {
      const params = { members: members.map(toMemberUri), ...(options.demo ? { demo: true } : {}) };
      const status = await withEngineHost((client) => client.request('pool-import', params));
      const ignored = status.unrecognized.map((u) => `\nignored ${u.uri}: ${u.reason}`).join('');
      print(io, options, status, poolStatusText(status) + ignored);
    });

  pool
    .command('export')
    .description('flush and close a pool and forget it (its members keep it; import it again later)')
    .argument('<name>', 'pool name')
    .option('--json', 'print JSON')
    .action(async (name: string, options: JsonOption) => {
      const reply = await withEngineHost((client) => client.request('pool-export', { pool: name }));
      print(io, options, reply, `pool ${name} exported`);
    });

  pool
    .command('status')
    .description("a pool's members, volumes and free space")
    .argument('<name>', 'pool name')
    .option('--json', 'print JSON')
    .action(async (name: string, options: JsonOption) => {
      const status = await withEngineHost((client) => client.request('pool-status', { pool: name }));
      print(io, options, status, poolStatusText(status));
    });

  pool
    .command('list')
    .description('the pools the engine host knows')
    .option('--json', 'print JSON')
    .action(async (options: JsonOption) => {
      const reply = await withEngineHost((client) => client.request('pool-list', {}));
      print(io, options, reply, poolListText(reply.pools));
    });
}
