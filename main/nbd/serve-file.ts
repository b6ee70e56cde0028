/**
 * serveFile: one image file as one NBD export, on a Unix socket or TCP.
 * What `spindle nbd serve FILE --socket PATH | --port N` runs.
 */
import path from 'node:path';
import { FileBlockDevice } from './file-device.js';
import { NbdServer } from './server.js';

export interface ServeFileOptions {
  readonly file: string;
  /** Unix socket path; exactly one of socket and port. */
  readonly socket?: string;
  /** TCP port (0 picks a free one); exactly one of socket and port. */
  readonly port?: number;
  /** TCP address to bind; default 127.0.0.1. */
  readonly host?: string;
  readonly readOnly?: boolean;
  /** Default "" (the default export). */
  readonly exportName?: string;
  readonly log?: (line: string) => void;
}

export interface ServedFile {
  /** Stops the server (in-flight requests finish) and closes the file. */
  close(): Promise<void>;
  readonly port?: number;
  readonly socketPath?: string;
  /** An NBD URI clients can use. */
  readonly uri: string;
  readonly server: NbdServer;
}

export async function serveFile(options: ServeFileOptions): Promise<ServedFile> {
  const hasSocket = options.socket !== undefined && options.socket !== '';
  const hasPort = options.port !== undefined;
  if (hasSocket === hasPort) throw new Error('give exactly one of a Unix socket path (--socket) or a TCP port (--port)');
  if (hasPort && (!Number.isInteger(options.port) || options.port! < 0 || options.port! > 65535)) {
    throw new Error(`bad TCP port ${options.port}`);
  }
  const exportName = options.exportName ?? '';
  const device = await FileBlockDevice.open(options.file, { readOnly: options.readOnly });
  const server = new NbdServer({ log: options.log });
  try {
    server.addExport(exportName, device, { description: path.basename(options.file), readOnly: options.readOnly });
    const encodedName = encodeURIComponent(exportName);
    if (hasSocket) {
      const socketPath = path.resolve(options.socket!);
      await server.listenUnix(socketPath);
      return {
        socketPath,
        uri: `nbd+unix:///${encodedName}?socket=${socketPath}`,
        server,
        close: closer(server, device),
      };
    }
    const host = options.host ?? '127.0.0.1';
    const port = await server.listenTcp({ port: options.port!, host });
    const uriHost = host.includes(':') ? `[${host}]` : host;
    return { port, uri: `nbd://${uriHost}:${port}/${encodedName}`, server, close: closer(server, device) };
  } catch (err) {
    await server.close();
    await device.close();
    throw err;
  }
}

function closer(server: NbdServer, device: FileBlockDevice): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () =>
    (closing ??= (async () => {
      await server.close();
      await device.close();
    })());
}
