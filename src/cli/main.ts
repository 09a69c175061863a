/**
 * The `shoal` process entry (bin/shoal.js imports the compiled form). Runs the command line, then
 * exits with its status once stdout has been flushed.
 */
import { hideBin } from 'yargs/helpers';
import { runCli } from './run.js';

const code = await runCli(hideBin(process.argv));
process.stdout.write('', () => process.exit(code));
