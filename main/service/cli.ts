/**
 * The `spindle` command line. Every command takes `--json` (one JSON document
 * on stdout, nothing else); exit codes: 0 ok, 1 failure, 2 usage. Errors are
 * one clear line on stderr, never a stack trace.
 */
import { Command, CommanderError, Option } from 'commander';
import { join } from 'node:path';
import { ContractError } from '../../preload/api.js';
import { startBrowserMode } from './browser-mode.js';
import { AlreadyRunningError, runDaemon } from './daemon.js';
import { connectToEngineHost, ensureEngineHost } from './ensure-engine-host.js';
import { packageInfo } from './package-info.js';
import { controlSocketPath } from './runtime-paths.js';
import { serveFile } from '../nbd/serve-file.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure the user can act on: printed as one line, exit 1. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = EXIT_FAILURE) {
    super(message);
    this.name = 'CliError';
  }
}

interface Io {
  out(text: string): void;
  err(text: string): void;
}

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

interface JsonOption {
  json?: boolean;
}

function print(io: Io, options: JsonOption, value: unknown, human: string): void {
  io.out(options.json ? JSON.stringify(value, null, 2) + '\n' : human + '\n');
}

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
    .action(async (options: JsonOption & { port: number; renderer: string }) => {
      const client = await ensureEngineHost();
      client.close();
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

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new CliError(`invalid port "${value}": expected a number from 0 to 65535`, EXIT_USAGE);
  return port;
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
      return EXIT_FAILURE;
    }
    const code = (error as NodeJS.ErrnoException)?.code;
    const message = (error as Error)?.message ?? String(error);
    io.err(`spindle: ${code ? `${code}: ` : ''}${message}\n`);
    return EXIT_FAILURE;
  }
}
