/**
 * `spindle fail|restore POOL MEMBER` and `spindle corrupt POOL/VOLUME OFFSET`:
 * simulated faults, to see (and test) what the engine does about them.
 * Corruption is refused for pools that are not demo or test pools.
 */
import type { Command } from 'commander';
import { parseSizeArgument, parseVolumePath, print, toMemberRef, withEngineHost, type Io, type JsonOption } from './command-support.js';
import { shortId } from './status-text.js';

export function addFaultCommands(program: Command, io: Io): void {
  program
    .command('fail')
    .description('mark a member failed, as if its disk died')
    .argument('<pool>', 'pool name')
    .argument('<member>', 'member uuid, uuid prefix, URI or path')
    .option('--json', 'print JSON')
    .action(async (pool: string, member: string, options: JsonOption) => {
      const reply = await withEngineHost((client) => client.request('member-fail', { pool, member: toMemberRef(member) }));
      print(io, options, reply, `member ${shortId(reply.member.uuid)} (${reply.member.uri}) of pool ${pool} is ${reply.member.state}`);
    });

  program
    .command('restore')
    .description('bring a failed or missing member back and rebuild what it missed')
    .argument('<pool>', 'pool name')
    .argument('<member>', 'member uuid, uuid prefix, URI or path')
    .option('--json', 'print JSON')
    .action(async (pool: string, member: string, options: JsonOption) => {
      const reply = await withEngineHost((client) => client.request('member-restore', { pool, member: toMemberRef(member) }));
      print(
        io,
        options,
        reply,
        `member ${shortId(reply.member.uuid)} (${reply.member.uri}) of pool ${pool} is ${reply.member.state}; ${reply.rowsRebuilt} row(s) rebuilt`,
      );
    });

  program
    .command('corrupt')
    .description("demo/test pools: damage one copy of the block at OFFSET behind the engine's back")
    .argument('<pool/volume>', 'the volume, as POOL/VOLUME')
    .argument('<offset>', 'byte offset in the volume, e.g. 0 or 1M', parseSizeArgument('offset'))
    .option('--json', 'print JSON')
    .action(async (path: string, offset: number, options: JsonOption) => {
      const reply = await withEngineHost((client) => client.request('volume-corrupt', { ...parseVolumePath(path), offset }));
      print(io, options, reply, `flipped ${reply.bytes} bytes of ${path} at offset ${offset} on member ${shortId(reply.member)} (slab ${reply.slab}); the next read finds and repairs them`);
    });
}
