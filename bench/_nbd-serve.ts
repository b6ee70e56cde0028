/**
 * Child process for bench/nbd.ts: serves one image file with our NBD server,
 * so the server has an event loop to itself. Usage:
 *   node --import tsx bench/_nbd-serve.ts FILE SOCKET
 * Prints "ready" once listening; stops cleanly on SIGTERM/SIGINT.
 */
import { serveFile } from '../main/nbd/serve-file.js';

const [file, socket] = process.argv.slice(2);
if (!file || !socket) {
  console.error('usage: _nbd-serve.ts FILE SOCKET');
  process.exit(2);
}
const served = await serveFile({ file, socket, log: (l) => console.error(l) });
process.stdout.write('ready\n');
const stop = async (): Promise<void> => {
  await served.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
