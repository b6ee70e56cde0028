/** Entry point of the `spindle` executable (bin/spindle.js) and of the spawned engine host. */
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2));
process.exitCode = code;
