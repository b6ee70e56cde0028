/** `spindle pool create|import|export|status|list|add|remove|spare|policy`, and `spindle drives`. */
import { Option, type Command } from 'commander';
import { LATENCY_BUDGET_MAX, LATENCY_BUDGET_MIN } from '../../../preload/api.js';
import { CliError, collect, EXIT_USAGE, parseSizeArgument, print, toMemberRef, toMemberUri, withEngineHost, type Io, type JsonOption, commandGroup } from './command-support.js';
import { startAction } from './job-commands.js';
import { drivesText, policyText } from './job-text.js';
import { poolListText, poolStatusText } from './status-text.js';

function parseOnOff(text: string): boolean {
  if (text === 'on') return true;
  if (text === 'off') return false;
  throw new CliError(`--auto-repair takes on or off, not "${text}"`, EXIT_USAGE);
}

function parseBudget(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || n < LATENCY_BUDGET_MIN || n > LATENCY_BUDGET_MAX) {
    throw new CliError(`--latency-budget takes a factor from ${LATENCY_BUDGET_MIN} to ${LATENCY_BUDGET_MAX} (of the idle p99 latency), not "${text}"`, EXIT_USAGE);
  }
  return n;
}

export function addPoolCommands(program: Command, io: Io): void {
  program
    .command('drives')
    .description('every drive: pool members and spares, unused demo images, and the disks the disk helper sees (with SMART)')
    .option('--json', 'print JSON')
    .action(async (options: JsonOption) => {
      const reply = await withEngineHost((client) => client.request('drives-list', {}));
      print(io, options, reply, drivesText(reply.drives));
    });

  const pool = commandGroup(program, 'pool', 'create, import, export and inspect pools; add, remove and spare members; policy');

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

  pool
    .command('add')
    .description('add drives to a pool as data members (their contents are lost); data moves onto them with a rebalance')
    .argument('<name>', 'pool name')
    .argument('<members...>', 'drives: paths or URIs (spindle drives lists them)')
    .option('--rebalance', 'start the rebalance that moves data onto them (what `spindle plan POOL add` showed)')
    .option('--force', 'erase what the drives hold: labels of another pool (or of this one, left by a member removed while unreachable), or data a disk helper found')
    .option('--json', 'print JSON')
    .action(async (name: string, members: string[], options: JsonOption & { rebalance?: boolean; force?: boolean }) => {
      const uris = members.map(toMemberUri);
      if (options.rebalance) {
        await startAction(io, options, name, { kind: 'add', members: uris, ...(options.force ? { force: true } : {}) });
        return;
      }
      const status = await withEngineHost((client) => client.request('pool-add-member', { pool: name, members: uris, ...(options.force ? { force: true } : {}) }));
      print(io, options, status, `${poolStatusText(status)}
data moves onto the new member(s) with \`spindle rebalance ${name}\``);
    });

  pool
    .command('remove')
    .description('move every slab off a member, then take it out of the pool (an evacuate job)')
    .argument('<name>', 'pool name')
    .argument('<member>', 'member uuid, uuid prefix, URI or path')
    .option('--json', 'print JSON')
    .action(async (name: string, member: string, options: JsonOption) => startAction(io, options, name, { kind: 'remove', member: toMemberRef(member) }));

  pool
    .command('spare')
    .description("make a drive (or a member holding no data) a spare of the pool; --remove takes a spare out")
    .argument('<name>', 'pool name')
    .argument('<member>', 'drive path or URI, or member uuid or prefix')
    .option('--remove', 'take this spare out of the pool')
    .option('--json', 'print JSON')
    .action(async (name: string, member: string, options: JsonOption & { remove?: boolean }) => {
      const ref = toMemberRef(member);
      if (options.remove) {
        const status = await withEngineHost((client) => client.request('pool-set-spare', { pool: name, member: ref, spare: false }));
        print(io, options, status, `${member} is no longer a spare of pool ${name}\n${poolStatusText(status)}`);
        return;
      }
      await startAction(io, options, name, { kind: 'spare', member: ref });
    });

  pool
    .command('policy')
    .description('show or change what the pool does by itself: automatic repair, and how much jobs may slow foreground I/O')
    .argument('<name>', 'pool name')
    .option('--auto-repair <on|off>', 'repair by itself when a member holding data fails (onto the spare, else into free space)', parseOnOff)
    .option('--latency-budget <factor>', `foreground p99 latency may be this many times the idle p99 while jobs run (${LATENCY_BUDGET_MIN}–${LATENCY_BUDGET_MAX})`, parseBudget)
    .option('--json', 'print JSON')
    .action(async (name: string, options: JsonOption & { autoRepair?: boolean; latencyBudget?: number }) => {
      const policy = {
        ...(options.autoRepair !== undefined ? { autoRepair: options.autoRepair } : {}),
        ...(options.latencyBudget !== undefined ? { latencyBudget: options.latencyBudget } : {}),
      };
      const status = await withEngineHost((client) =>
        Object.keys(policy).length > 0 ? client.request('pool-set-policy', { pool: name, policy }) : client.request('pool-status', { pool: name }),
      );
      print(io, options, Object.keys(policy).length > 0 ? status : { pool: name, policy: status.policy }, policyText(name, status.policy));
    });
}
