/**
 * The disk helper process: reads requests from stdin, answers on stdout
 * (helper-protocol.ts), logs to stderr, and exits when stdin closes or on
 * SIGTERM/SIGINT, stopping every served disk first.
 *
 * It takes no arguments and no paths: everything it may touch comes from the
 * inventory. Started through pkexec in production (see packaging/linux), as
 * the user in development and tests.
 *
 * Environment: SPINDLE_HELPER_RUNTIME_DIR (socket directory, unprivileged
 * runs only), SPINDLE_HELPER_POLL_MS (hotplug poll interval, default 2000).
 */
import { listDisks } from './disk-inventory.js';
import { DiskService } from './disk-service.js';
import { HELPER_PROTOCOL_VERSION, HelperError, MAX_LINE_BYTES, eventLine, parseRequestLine, replyLine, type HelperRequest } from './helper-protocol.js';
import { DiskWatcher } from './hotplug.js';
import { helperOwner, prepareSocketDir } from './socket-dir.js';

function write(line: string): void {
  process.stdout.write(line);
}

function log(line: string): void {
  process.stderr.write(`spindle-disk-helper: ${line}\n`);
}

async function handle(service: DiskService, request: HelperRequest): Promise<unknown> {
  switch (request.op) {
    case 'list':
      return service.list();
    case 'served':
      return service.served();
    case 'smart':
      return service.smart(request.disk);
    case 'serve':
      return service.serve(request.disk, request.confirmExistingData === true);
    case 'stop':
      await service.stop(request.disk);
      return null;
  }
}

async function main(): Promise<void> {
  if (process.argv.length > 2) throw new Error('takes no arguments; it reads requests on stdin');
  const owner = helperOwner();
  // Elevated, the helper runs lsblk, wipefs and smartctl as root: only from the system's own directories.
  if (owner.elevated) process.env.PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
  const socketDir = await prepareSocketDir(owner);
  const service = new DiskService({ socketDir, log, onEvent: (event, body) => write(eventLine(event, body)) });
  await service.start();
  const pollMs = Number(process.env.SPINDLE_HELPER_POLL_MS ?? 2000);
  const watcher = new DiskWatcher({
    list: () => listDisks({ signatures: false }),
    onEvent: (event) => void service.hotplug(event).catch((e: unknown) => log(`hotplug: ${(e as Error).message}`)),
    onError: (e) => log(`hotplug poll failed: ${e.message}`),
    intervalMs: Number.isFinite(pollMs) && pollMs >= 50 ? pollMs : 2000,
  });
  await watcher.start();

  let closing: Promise<void> | undefined;
  const shutdown = (code: number) => {
    closing ??= (async () => {
      await watcher.stop();
      await service.close();
      await socketDir.remove();
      process.exit(code);
    })();
  };
  // The app that started us is gone (EPIPE): nobody can use the disks we serve any more.
  process.stdout.on('error', () => shutdown(0));
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));

  write(eventLine('ready', { protocol: HELPER_PROTOCOL_VERSION, pid: process.pid, uid: owner.uid, elevated: owner.elevated, socket: service.socket }));

  let pending = '';
  process.stdin.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    let newline: number;
    while ((newline = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (Buffer.byteLength(line) > MAX_LINE_BYTES) {
        write(replyLine(null, { error: new HelperError('BAD_REQUEST', `a request line is longer than ${MAX_LINE_BYTES} bytes`) }));
      } else if (line.trim() !== '') {
        void answer(service, line);
      }
    }
    if (Buffer.byteLength(pending) > MAX_LINE_BYTES) {
      write(replyLine(null, { error: new HelperError('BAD_REQUEST', `a request line is longer than ${MAX_LINE_BYTES} bytes; closing`) }));
      shutdown(2);
    }
  });
  process.stdin.on('end', () => shutdown(0));
}

async function answer(service: DiskService, line: string): Promise<void> {
  const parsed = parseRequestLine(line);
  if (!parsed.ok) {
    write(replyLine(parsed.id, { error: new HelperError('BAD_REQUEST', parsed.message) }));
    return;
  }
  try {
    write(replyLine(parsed.request.id, { result: await handle(service, parsed.request) }));
  } catch (error) {
    const e = error instanceof HelperError ? error : new HelperError('FAILED', (error as Error)?.message ?? String(error));
    write(replyLine(parsed.request.id, { error: e }));
  }
}

main().catch((error: unknown) => {
  log(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
