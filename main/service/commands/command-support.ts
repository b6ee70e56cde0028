/**
 * What every `spindle` command shares: exit codes, one-line errors, output
 * (`--json` prints one JSON document and nothing else), the engine host
 * connection, and the parsers for what people type (sizes, POOL/VOLUME,
 * member paths).
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { parseSize, SizeSyntaxError } from '../../engine/units.js';
import type { ControlClient } from '../control-client.js';
import { ensureEngineHost } from '../ensure-engine-host.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure the user can act on: printed as one line, exit 1 (or 2 for usage). */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = EXIT_FAILURE) {
    super(message);
    this.name = 'CliError';
  }
}

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether stdout is a terminal (live progress, plans before starting); absent: it is not. */
  readonly tty?: boolean;
  /** The terminal's width in characters, when it is one. */
  readonly columns?: number;
}

export const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  get tty() {
    return process.stdout.isTTY === true;
  },
  get columns() {
    return process.stdout.columns;
  },
};

export interface JsonOption {
  json?: boolean;
}

export function print(io: Io, options: JsonOption, value: unknown, human: string): void {
  io.out(options.json ? JSON.stringify(value, null, 2) + '\n' : human + '\n');
}

/** Runs `fn` with a connection to the engine host (started if none runs), closed after. */
export async function withEngineHost<T>(fn: (client: ControlClient) => Promise<T>): Promise<T> {
  const client = await ensureEngineHost();
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** `64M`, `1.5G`, `4096` → bytes; a usage error naming the option otherwise. */
export function parseSizeArgument(what: string): (text: string) => number {
  return (text) => {
    try {
      return parseSize(text);
    } catch (error) {
      if (error instanceof SizeSyntaxError) throw new CliError(`${what}: ${error.message}`, EXIT_USAGE);
      throw error;
    }
  };
}

export function parseCount(what: string, min: number, max: number): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max) throw new CliError(`invalid ${what} "${text}": expected a number from ${min} to ${max}`, EXIT_USAGE);
    return n;
  };
}

export const parsePort = parseCount('port', 0, 65535);

/** POOL/VOLUME → its two names. */
export function parseVolumePath(text: string): { pool: string; name: string } {
  const match = /^([^/]+)\/([^/]+)$/.exec(text);
  if (!match) throw new CliError(`"${text}" is not POOL/VOLUME`, EXIT_USAGE);
  return { pool: match[1]!, name: match[2]! };
}

/**
 * A member as people give it: a URI (file:, nbd:, nbds:, nbd+unix:) or a
 * plain path, which becomes a file: URI. Paths are made absolute here,
 * against the directory the command runs in: the engine host runs elsewhere.
 */
export function toMemberUri(text: string): string {
  if (text.startsWith('file:')) return `file:${resolve(text.slice('file:'.length).replace(/^\/\/(?=\/)/, ''))}`;
  if (/^(nbd|nbds|nbd\+unix):/.test(text)) return text;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new CliError(`"${text}" is not a member: use a path, file:PATH, nbd+unix:///EXPORT?socket=PATH or nbd://HOST:PORT/EXPORT`, EXIT_USAGE);
  }
  return `file:${resolve(text)}`;
}

/**
 * A member reference for fail/restore: a uuid or uuid prefix as it is, a
 * URI or path as a member URI (so `disk1.img` works from its folder).
 */
export function toMemberRef(text: string): string {
  return /^[0-9a-f-]+$/i.test(text) ? text : toMemberUri(text);
}

/**
 * A command group (`spindle pool`): without a subcommand it is a one-line
 * usage error naming the subcommands, not a screen of help on stderr.
 */
export function commandGroup(program: Command, name: string, description: string): Command {
  const group = program.command(name).description(description);
  group.usage('<command> [options]').argument('[command]').action((given?: string) => {
    const names = group.commands.map((c) => c.name()).join(', ');
    const problem = given === undefined ? 'needs a command' : `has no command '${given}'`;
    throw new CliError(`spindle ${name} ${problem}: use ${names} (see spindle ${name} --help)`, EXIT_USAGE);
  });
  return group;
}

/** For repeatable options (`--spare A --spare B`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
