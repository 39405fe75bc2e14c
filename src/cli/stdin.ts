// Secrets (passwords, client secrets) never go on the command line, where shell history and
// `ps` would keep them: commands read them from standard input behind a `--…-stdin` flag.
import { PosternError } from '../errors.js';

/** The whole of stdin minus one trailing newline, when `enabled`; `flag` names the option in errors. */
export async function readSecretFromStdin(enabled: boolean | undefined, flag: string): Promise<string | undefined> {
  if (!enabled) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const secret = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (!secret) throw new PosternError('bad_request', `${flag}: nothing was read from standard input`);
  return secret;
}
