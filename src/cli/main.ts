#!/usr/bin/env node
// The `postern` command: global options, the command tree, and one-line errors with a
// non-zero exit for every failure (bad flags, bad config, API problems).
import { Command, CommanderError } from 'commander';
import { resolveContext } from './context.js';
import type { GlobalOptions } from './context.js';
import { registerServer } from './commands/server.js';
import { registerSocket } from './commands/socket.js';
import { registerConnector } from './commands/connector.js';
import { registerConnect } from './commands/connect.js';
import { registerUser } from './commands/user.js';
import { registerClient } from './commands/client.js';
import { registerIdp } from './commands/idp.js';
import { registerLogin } from './commands/login.js';
import { registerToken } from './commands/token.js';
import { registerPolicy } from './commands/policy.js';
import { registerAudit } from './commands/audit.js';
import { registerRecordings } from './commands/recordings.js';
import { registerAgent } from './commands/agent.js';
import { registerService } from './commands/service.js';
import { errorMessage, isPosternError } from '../errors.js';
import { VERSION } from './server-runtime.js';

/** Stack traces only when asked for; read from argv so errors before parsing honour it too. */
const debug = process.argv.includes('--debug');

function fail(message: string, code = 1, err?: unknown): never {
  process.stderr.write(`postern: ${message.trim()}\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(code);
}

// `postern audit search | head`: a reader that went away is not an error of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    fail(errorMessage(err), 1, err);
  });
}

export function buildProgram(): Command {
  const program = new Command('postern')
    .description('Postern: zero-trust access to private services, no VPN')
    .version(VERSION)
    .option('--server <url>', 'control plane URL (POSTERN_SERVER)')
    .option('--token <token>', 'API token (POSTERN_TOKEN)')
    .option('--ca-file <file>', 'CA certificate to trust (POSTERN_CA)')
    .option('--data-dir <dir>', 'local server data dir (POSTERN_DATA_DIR)')
    .option('--json', 'machine-readable output')
    .option('--debug', 'print stack traces of unexpected errors')
    .option('--log-format <human|json>', 'log lines: human on a terminal, JSON otherwise (POSTERN_LOG_FORMAT)')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: (text) => fail(text.replace(/^error: /, '').split('\n')[0] ?? text, 2) });
  const context = () => resolveContext(program.opts<GlobalOptions>());
  // Loggers are made deep inside commands; the flag reaches them as the variable it stands for.
  program.hook('preAction', () => {
    const format = program.opts<{ logFormat?: string }>().logFormat;
    if (format !== undefined) process.env.POSTERN_LOG_FORMAT = format;
  });
  registerServer(program);
  registerSocket(program, context);
  registerConnector(program, context);
  registerConnect(program, context);
  registerUser(program, context);
  registerClient(program, context);
  registerIdp(program, context);
  registerLogin(program, context);
  registerToken(program, context);
  registerPolicy(program, context);
  registerAudit(program, context);
  registerRecordings(program, context);
  registerAgent(program, context);
  registerService(program, context);
  return program;
}

process.on('unhandledRejection', (err) => fail(errorMessage(err), 1, err));
process.on('uncaughtException', (err) => fail(errorMessage(err), 1, err));

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.exitCode);
  }
  fail(isPosternError(err) ? err.message : errorMessage(err), 1, err);
}
