// Command output: `--json` prints the API's JSON as is; otherwise aligned columns for people.

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function printTable(rows: readonly Record<string, unknown>[], columns: readonly string[]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cells = rows.map((row) => columns.map((column) => format(row[column])));
  const widths = columns.map((column, i) => Math.max(column.length, ...cells.map((line) => line[i]!.length)));
  const line = (values: string[]) => values.map((value, i) => value.padEnd(widths[i]!)).join('  ').trimEnd() + '\n';
  process.stdout.write(line(columns.map((c) => c.toUpperCase())));
  for (const values of cells) process.stdout.write(line(values));
}

export function printFields(record: Record<string, unknown>, fields: readonly string[]): void {
  const width = Math.max(...fields.map((f) => f.length));
  for (const field of fields) process.stdout.write(`${(field + ':').padEnd(width + 2)}${format(record[field])}\n`);
}

function format(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (Array.isArray(value)) return value.length === 0 ? '-' : value.map(format).join(',');
  if (typeof value === 'object') return Object.entries(value).map(([k, v]) => `${k}=${format(v)}`).join(',') || '-';
  return String(value);
}
