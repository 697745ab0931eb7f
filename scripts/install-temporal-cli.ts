/**
 * `npm run temporal:install`: finds or builds the Temporal CLI (dev server + Web UI) through the
 * same module `npm start` and the tests use, and prints where it is. CI runs it before the tests.
 */
import { findOrInstallTemporalCli, TemporalCliNotFoundError } from '../infra/temporal-cli';

async function main(): Promise<void> {
  const started = Date.now();
  try {
    const cli = await findOrInstallTemporalCli({ log: (line) => console.log(line), allowSdkDownload: false });
    if (cli.kind === 'binary')
      console.log(`[temporal-cli] ${cli.path} (found via ${cli.source}) in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  } catch (error) {
    if (error instanceof TemporalCliNotFoundError) {
      console.error(error.message);
      // The tests can still fall back to the SDK's download when the internet is reachable.
      console.error('[temporal-cli] continuing: the Temporal SDK will try to download the CLI when needed.');
      return;
    }
    throw error;
  }
}

void main();
