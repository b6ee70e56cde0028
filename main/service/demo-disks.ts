/**
 * The demo pool's disks: its image files, each served over NBD by the engine
 * host itself on one Unix socket ($RUNTIME/demo-disks.sock, export "disk0" …),
 * so the demo pool reaches its members the way a real pool does — through
 * the NBD client, as the privileged helper would serve real disks — and not
 * through direct file access.
 *
 * The server opens no file a client names: it serves exactly the images it
 * was given (the demo folder of the state directory), under fixed names.
 * The export names are stable, so the URIs saved in pools.json stay valid
 * across restarts; the registry serves the images again before it imports
 * a saved demo pool.
 */
import { basename, join } from 'node:path';
import { FileBlockDevice } from '../nbd/file-device.js';
import { NbdServer } from '../nbd/server.js';

export const DEMO_DISKS_SOCKET = 'demo-disks.sock';

export class DemoDisks {
  private server: NbdServer | undefined;
  private readonly served = new Map<string, { exportName: string; device: FileBlockDevice }>();

  constructor(
    private readonly runtimeDir: string,
    private readonly log: (line: string) => void = () => {},
  ) {}

  get socketPath(): string {
    return join(this.runtimeDir, DEMO_DISKS_SOCKET);
  }

  /** The member URI of an image (served or not): its export is named after the file, without ".img". */
  uriOf(image: string): string {
    return `nbd+unix:///${exportNameOf(image)}?socket=${this.socketPath}`;
  }

  /** Serves each image (those served already stay as they are); returns their member URIs in order. */
  async serve(images: readonly string[]): Promise<string[]> {
    if (!this.server) {
      const server = new NbdServer({ log: (line) => this.log(`demo disks: ${line}`) });
      await server.listenUnix(this.socketPath);
      this.server = server;
    }
    for (const image of images) {
      if (this.served.has(image)) continue;
      const device = await FileBlockDevice.open(image);
      const exportName = exportNameOf(image);
      this.server.addExport(exportName, device);
      this.served.set(image, { exportName, device });
    }
    return images.map((image) => this.uriOf(image));
  }

  /** Stops serving (connections are closed) and closes the images. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await server.close();
    await Promise.all([...this.served.values()].map(({ device }) => device.close().catch(() => {})));
    this.served.clear();
  }
}

function exportNameOf(image: string): string {
  return basename(image).replace(/\.img$/, '');
}
