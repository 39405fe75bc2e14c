// Zod's validation issues as Postern's one-line errors name them: the field path, then why.
import type { z } from 'zod';

/** `sockets[0].upstream: must be a URL …` for one issue. */
export function issueLine(issue: z.core.$ZodIssue): string {
  const path = issue.path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), '');
  return path ? `${path}: ${issue.message}` : issue.message;
}

/** The first issue of a failed parse, as one line. */
export function formatZodIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? issueLine(issue) : 'invalid';
}
