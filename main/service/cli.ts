/**
 * The `spindle` command line. Every command takes `--json` (one JSON document
 * on stdout, nothing else); exit codes: 0 ok, 1 failure, 2 usage. Errors are
 * one clear line on stderr, never a stack trace.
 */
import { Command, CommanderError, Option } from 'commander';
import { join } from 'node:path';
import { ContractError } from '../../preload/api.js';
import { addDemoCommand } from './commands/demo-command.js';
import { addFaultCommands } from './commands/fault-commands.js';
import { addPoolCommands } from './commands/pool-commands.js';
import { addVolumeCommands } from './commands/volume-commands.js';
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, parsePort, print, processIo, type Io, type JsonOption } from './commands/command-support.js';
import { connectToEngineHost, ensureEngineHost } from './ensure-engine-host.js';
import { packageInfo } from './package-info.js';
import { controlSocketPath } from './runtime-paths.js';

export { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE };

export function formatDuration(ms: number): string {
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${m}m ${s}s`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

export function buildProgram(io: Io = processIo): Command {
  const program = new Command('spindle')
    .description('Spindle storage manager: pools disks over NBD and serves redundant volumes.')
    .version(packageInfo().version, '-V, --version', 'print the CLI version')
    .showSuggestionAfterError(true)
    .configureOutput({ writeOut: io.out, writeErr: io.err, outputError: (text, write) => write(text) })
    .exitOverride();

  program
    .command('daemon')
    .description('run the engine host in the foreground (until SIGTERM or `spindle stop`)')
    .action(async () => {
      // Loaded on use (here, in browser and in nbd serve): the engine, the NBD
      // server and ws are most of the code, and every other command does without them.
      const { AlreadyRunningError, runDaemon } = await import('./daemon.js');
      try {
        await runDaemon();
      } catch (error) {
        if (error instanceof AlreadyRunningError) throw new CliError(error.message);
        throw error;
      }
    });

  program
    .command('version')
    .description("show the engine host's version and uptime (starts the engine host if none runs)")
    .option('--json', 'print JSON')
    .action(async (options: JsonOption) => {
      const client = await ensureEngineHost();
      try {
        const info = await client.request('version', {});
        print(io, options, info, `spindle ${info.version} — engine host pid ${info.pid}, up ${formatDuration(info.uptimeMs)}`);
      } finally {
        client.close();
      }
    });

  program
    .command('stop')
    .description('stop the engine host if one is running')
    .option('--json', 'print JSON')
    .action(async (options: JsonOption) => {
      let client;
      try {
        client = await connectToEngineHost();
      } catch {
        print(io, options, { running: false }, 'no engine host is running');
        return;
      }
      await client.request('shutdown', {});
      client.close();
      print(io, options, { running: true, stopping: true }, 'engine host stopping');
    });

  program
    .command('browser')
    .description('serve the UI to a local browser at http://127.0.0.1:PORT with a per-run token')
    .addOption(new Option('--port <port>', 'TCP port on 127.0.0.1 (0 picks a free one)').default(0).argParser(parsePort))
    .option('--renderer <dir>', 'folder of the built renderer', join(packageInfo().root, 'dist', 'renderer'))
    .option('--json', 'print JSON (the URL) once serving')
    .option('--demo-on-first-start', 'create the demo pool the first time the app opens (npm start does)')
    .action(async (options: JsonOption & { port: number; renderer: string; demoOnFirstStart?: boolean }) => {
      const client = await ensureEngineHost();
      try {
        if (options.demoOnFirstStart) {
          const { openDemoOnFirstStart } = await import('./first-start.js');
          if (await openDemoOnFirstStart(client, (line) => io.err(line + '\n'))) io.err('first start: created the demo pool\n');
        }
      } finally {
        client.close();
      }
      const { startBrowserMode } = await import('./browser-mode.js');
      const server = await startBrowserMode({
        socketPath: controlSocketPath(),
        rendererDir: options.renderer,
        port: options.port,
        log: (line) => io.err(line + '\n'),
      });
      print(io, options, { url: server.url, port: server.port }, `Spindle is served in browser mode at ${server.url}`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void server.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });

  addPoolCommands(program, io);
  addVolumeCommands(program, io);
  addFaultCommands(program, io);
  addDemoCommand(program, io);

  const nbd = program.command('nbd').description('NBD tools');
  nbd
    .command('serve')
    .description('serve an image file over NBD until interrupted (for tests, and for people)')
    .argument('<file>', 'image file to serve')
    .option('--socket <path>', 'Unix socket to listen on (created 0600)')
    .addOption(new Option('--port <port>', 'TCP port on --host (0 picks a free one)').argParser(parsePort))
    .option('--host <address>', 'TCP address to bind', '127.0.0.1')
    .option('--export <name>', 'export name', '')
    .option('--read-only', 'refuse writes')
    .option('--json', 'print JSON (the URI) once serving')
    .action(async (file: string, options: JsonOption & { socket?: string; port?: number; host: string; export: string; readOnly?: boolean }) => {
      if ((options.socket === undefined) === (options.port === undefined)) {
        throw new CliError('give exactly one of --socket PATH or --port N', EXIT_USAGE);
      }
      const { serveFile } = await import('../nbd/serve-file.js');
      let served;
      try {
        served = await serveFile({
          file,
          socket: options.socket,
          port: options.port,
          host: options.host,
          exportName: options.export,
          readOnly: options.readOnly,
          log: (line) => io.err(line + '\n'),
        });
      } catch (error) {
        throw new CliError(`cannot serve ${file}: ${(error as Error).message}`);
      }
      print(io, options, { uri: served.uri, socket: served.socketPath, port: served.port }, `serving ${file} at ${served.uri}`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void served.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });

  return program;
}

/** Runs the CLI; returns the exit code instead of exiting, for tests. */
export async function runCli(argv: readonly string[], io: Io = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version also end here, with exit code 0.
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (error instanceof CliError) {
      io.err(`spindle: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof ContractError) {
      io.err(`spindle: ${error.message}\n`);
      // Parameters the engine host refused are the caller's to fix, like any usage error.
      return error.code === 'INVALID_PARAMS' ? EXIT_USAGE : EXIT_FAILURE;
    }
    const code = (error as NodeJS.ErrnoException)?.code;
    const message = (error as Error)?.message ?? String(error);
    io.err(`spindle: ${code ? `${code}: ` : ''}${message}\n`);
    return EXIT_FAILURE;
  }
}
