/** `spindle volume create|delete|grow|export|unexport|status POOL/VOLUME`. */
import { Option, type Command } from 'commander';
import { VOLUME_LAYOUTS, type ChunkStatus, type VolumeStatus } from '../../../preload/api.js';
import { parseCount, parsePort, parseSizeArgument, parseVolumePath, print, withEngineHost, type Io, type JsonOption , commandGroup } from './command-support.js';
import { volumeLine, volumeStatusText } from './status-text.js';

const VOLUME_ARGUMENT = ['<pool/volume>', 'the volume, as POOL/VOLUME'] as const;

export function addVolumeCommands(program: Command, io: Io): void {
  const volume = commandGroup(program, 'volume', 'create, grow, export and inspect volumes');

  volume
    .command('create')
    .description('create a volume in a pool')
    .argument(...VOLUME_ARGUMENT)
    .addOption(new Option('--size <size>', 'size, e.g. 10G').argParser(parseSizeArgument('--size')).makeOptionMandatory())
    .addOption(new Option('--layout <layout>', 'redundancy layout').choices(VOLUME_LAYOUTS).makeOptionMandatory())
    .addOption(new Option('--width <n>', 'members per chunk (default: what the layout picks for the pool)').argParser(parseCount('width', 1, 257)))
    .option('--json', 'print JSON')
    .action(async (path: string, options: JsonOption & { size: number; layout: (typeof VOLUME_LAYOUTS)[number]; width?: number }) => {
      const { pool, name } = parseVolumePath(path);
      const params = { pool, name, size: options.size, layout: options.layout, ...(options.width !== undefined ? { width: options.width } : {}) };
      const created = await withEngineHost((client) => client.request('volume-create', params));
      print(io, options, created, volumeLine(created));
    });

  volume
    .command('delete')
    .description('delete a volume and its data (unexport it first)')
    .argument(...VOLUME_ARGUMENT)
    .option('--json', 'print JSON')
    .action(async (path: string, options: JsonOption) => {
      const reply = await withEngineHost((client) => client.request('volume-delete', parseVolumePath(path)));
      print(io, options, reply, `volume ${path} deleted`);
    });

  volume
    .command('grow')
    .description('grow a volume (exported ones are re-exported; clients reconnect to see the new size)')
    .argument(...VOLUME_ARGUMENT)
    .addOption(new Option('--size <size>', 'the new size, e.g. 20G').argParser(parseSizeArgument('--size')).makeOptionMandatory())
    .option('--json', 'print JSON')
    .action(async (path: string, options: JsonOption & { size: number }) => {
      const grown = await withEngineHost((client) => client.request('volume-grow', { ...parseVolumePath(path), size: options.size }));
      print(io, options, grown, volumeLine(grown));
    });

  volume
    .command('export')
    .description('serve a volume over NBD (Unix socket; and TCP on 127.0.0.1 with --tcp-port)')
    .argument(...VOLUME_ARGUMENT)
    .addOption(new Option('--tcp-port <port>', 'also serve on this TCP port of 127.0.0.1 (0 picks one)').argParser(parsePort))
    .option('--json', 'print JSON')
    .action(async (path: string, options: JsonOption & { tcpPort?: number }) => {
      const params = { ...parseVolumePath(path), ...(options.tcpPort !== undefined ? { tcpPort: options.tcpPort } : {}) };
      const exported = await withEngineHost((client) => client.request('volume-export', params));
      print(io, options, exported, [exported.export.uri, exported.export.tcpUri].filter(Boolean).join('\n'));
    });

  volume
    .command('unexport')
    .description('stop serving a volume over NBD')
    .argument(...VOLUME_ARGUMENT)
    .option('--json', 'print JSON')
    .action(async (path: string, options: JsonOption) => {
      const reply = await withEngineHost((client) => client.request('volume-unexport', parseVolumePath(path)));
      print(io, options, reply, reply.wasExported ? `volume ${path} is no longer exported` : `volume ${path} was not exported`);
    });

  volume
    .command('status')
    .description("a volume's state and its layout map (which member and slab holds what)")
    .argument(...VOLUME_ARGUMENT)
    .option('--json', 'print JSON')
    .action(async (path: string, options: JsonOption) => {
      const ref = parseVolumePath(path);
      const status = await withEngineHost(async (client) => {
        // The map comes in pages; the command shows all of it.
        let page = await client.request('volume-status', ref);
        const chunks: ChunkStatus[] = [...page.chunks];
        while (page.nextChunk !== undefined) {
          page = await client.request('volume-status', { ...ref, firstChunk: page.nextChunk });
          chunks.push(...page.chunks);
        }
        const { nextChunk: _next, ...last } = page;
        return { ...last, firstChunk: 0, chunks } satisfies VolumeStatus;
      });
      print(io, options, status, volumeStatusText(status));
    });
}

