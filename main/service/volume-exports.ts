/**
 * The engine host's NBD exports: every exported volume is export POOL/VOLUME
 * on one Unix socket (`nbd.sock` in the runtime directory, 0600 in a 0700
 * folder, so only this user reaches it), and optionally on its own TCP port
 * on 127.0.0.1.
 *
 * Why one Unix socket: clients name the export anyway, and one socket is one
 * path to document. Why one NbdServer per TCP port: a TCP port on 127.0.0.1
 * is open to every local user, so a TCP listener serves only the volume it
 * was asked for, never the whole table.
 */
import type { BlockDevice } from '../nbd/block-device.js';
import { NbdServer } from '../nbd/server.js';
import type { VolumeExport } from '../../preload/api.js';

interface TcpExport {
  readonly server: NbdServer;
  readonly port: number;
}

export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

export class VolumeExports {
  private readonly unix: NbdServer;
  private listening: Promise<void> | undefined;
  private readonly tcp = new Map<string, TcpExport>();
  private closed = false;

  constructor(
    readonly socketPath: string,
    private readonly log: (line: string) => void = () => {},
  ) {
    this.unix = new NbdServer({ log });
  }

  has(exportName: string): boolean {
    return this.unix.exportNames.includes(exportName);
  }

  /** Where an export is served, or undefined when it is not. */
  info(exportName: string): VolumeExport | undefined {
    if (!this.has(exportName)) return undefined;
    const tcp = this.tcp.get(exportName);
    return {
      exportName,
      uri: `nbd+unix:///${exportName}?socket=${this.socketPath}`,
      socket: this.socketPath,
      ...(tcp ? { tcpPort: tcp.port, tcpUri: `nbd://127.0.0.1:${tcp.port}/${exportName}` } : {}),
    };
  }

  /**
   * Exports `device` as `exportName`; idempotent for an export that exists
   * (it gains a TCP listener when asked for one and has none).
   */
  async add(exportName: string, device: BlockDevice, tcpPort?: number): Promise<VolumeExport> {
    if (this.closed) throw new ExportError('the engine host is stopping');
    this.listening ??= this.unix.listenUnix(this.socketPath);
    try {
      await this.listening;
    } catch (error) {
      this.listening = undefined;
      throw error;
    }
    if (!this.has(exportName)) this.unix.addExport(exportName, device, { description: exportName });
    if (tcpPort !== undefined) {
      const existing = this.tcp.get(exportName);
      if (existing && tcpPort !== 0 && existing.port !== tcpPort) {
        throw new ExportError(`${exportName} is already exported on TCP port ${existing.port}; unexport it first to move it`);
      }
      if (!existing) {
        const server = new NbdServer({ log: this.log });
        server.addExport(exportName, device, { description: exportName });
        try {
          const port = await server.listenTcp({ port: tcpPort, host: '127.0.0.1' });
          this.tcp.set(exportName, { server, port });
        } catch (error) {
          await server.close();
          throw new ExportError(`cannot listen on 127.0.0.1:${tcpPort}: ${(error as Error).message}`);
        }
      }
    }
    return this.info(exportName)!;
  }

  /**
   * Serves a new device under an existing export (a grown volume is a new
   * object). Connected clients are disconnected: NBD has no way to tell them
   * that the size changed, so they reconnect and see the new one.
   */
  async replace(exportName: string, device: BlockDevice): Promise<void> {
    if (!this.has(exportName)) return;
    await this.unix.removeExport(exportName);
    this.unix.addExport(exportName, device, { description: exportName });
    const tcp = this.tcp.get(exportName);
    if (tcp) {
      await tcp.server.removeExport(exportName);
      tcp.server.addExport(exportName, device, { description: exportName });
    }
  }

  /** Stops serving an export; its clients are disconnected once their requests finish. False if it was not exported. */
  async remove(exportName: string): Promise<boolean> {
    if (!this.has(exportName)) return false;
    const tcp = this.tcp.get(exportName);
    this.tcp.delete(exportName);
    await Promise.all([this.unix.removeExport(exportName), tcp?.server.close()]);
    return true;
  }

  /** Closes every listener and connection; in-flight requests finish first. */
  async close(): Promise<void> {
    this.closed = true;
    const tcp = [...this.tcp.values()];
    this.tcp.clear();
    await Promise.all([this.unix.close(), ...tcp.map((t) => t.server.close())]);
  }
}
