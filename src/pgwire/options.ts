// Postern's use of the StartupMessage's `options` parameter: a client asks for an upstream role
// with `-c postern.role=<role>` (any libpq client can set it with PGOPTIONS; `postern client db
// --role` writes it). It is only a request — policy grants it or refuses the session — and the
// edge never forwards `options` upstream.

/** The name of the setting that carries the asked role. */
export const ROLE_OPTION = 'postern.role';

/**
 * The arguments of a startup `options` string, split as PostgreSQL splits them: on unescaped
 * whitespace, a backslash taking the next character literally.
 */
export function splitStartupOptions(options: string): string[] {
  const args: string[] = [];
  let current = '';
  let inArg = false;
  for (let i = 0; i < options.length; i++) {
    const c = options[i]!;
    if (c === '\\' && i + 1 < options.length) {
      current += options[++i];
      inArg = true;
    } else if (/\s/.test(c)) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += c;
      inArg = true;
    }
  }
  if (inArg) args.push(current);
  return args;
}

/** The `name=value` settings of an options string (`-c name=value`, `-cname=value`, `--name=value`), in order. */
export function startupSettings(options: string): [string, string][] {
  const args = splitStartupOptions(options);
  const settings: [string, string][] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const setting = arg === '-c' ? args[++i] : arg.startsWith('--') ? arg.slice(2) : arg.startsWith('-c') ? arg.slice(2) : undefined;
    const at = setting?.indexOf('=') ?? -1;
    if (setting !== undefined && at > 0) settings.push([setting.slice(0, at), setting.slice(at + 1)]);
  }
  return settings;
}

/** The role the client asks for, if any; the last setting wins, as in PostgreSQL. */
export function askedRole(parameters: Readonly<Record<string, string>>): string | undefined {
  const options = parameters.options;
  if (options === undefined) return undefined;
  return startupSettings(options).filter(([name]) => name === ROLE_OPTION).at(-1)?.[1];
}

/** The `options` argument that asks for `role`, escaped as PostgreSQL splits options (for PGOPTIONS or a startup packet). */
export function roleOption(role: string): string {
  return `-c ${ROLE_OPTION}=${role.replace(/[\s\\]/g, (c) => `\\${c}`)}`;
}
