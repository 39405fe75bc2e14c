// Result rows of the bench: the printed table (with targets) and the JSON file.
import { writeFileSync } from 'node:fs';

export interface Row {
  name: string;
  value: number;
  unit: string;
  baseline: string | null;
  baseline_value: number | null;
  ratio: number | null;
  /** Printed only: the target this row is held to, and whether it is met. */
  target?: string;
  pass?: boolean;
}

export class Report {
  readonly rows: Row[] = [];
  readonly notes: string[] = [];
  /** Targets that this bench cannot measure yet, with why. */
  readonly unmeasured: string[] = [];

  /** A figure with no baseline (the baseline itself). */
  figure(name: string, value: number, unit: string): void {
    this.rows.push({ name, value, unit, baseline: null, baseline_value: null, ratio: null });
  }

  /** A figure beside one baseline; `ratio` = value / baseline value. */
  compare(name: string, value: number, unit: string, baseline: string, baselineValue: number, target?: { text: string; pass: (ratio: number) => boolean }): Row {
    const ratio = baselineValue > 0 ? value / baselineValue : null;
    const row: Row = { name, value, unit, baseline, baseline_value: baselineValue, ratio };
    if (target) {
      row.target = target.text;
      row.pass = ratio !== null && target.pass(ratio);
    }
    this.rows.push(row);
    return row;
  }

  /** A target printed in the summary as not measured (with the reason). */
  notMeasured(target: string, why: string): void {
    this.unmeasured.push(`${target}: not measured (${why})`);
  }

  note(text: string): void {
    this.notes.push(text);
    console.log(`  note: ${text}`);
  }

  print(): void {
    const fmt = (v: number | null) => (v === null ? '-' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));
    const cells = this.rows.map((r) => [
      r.name,
      `${fmt(r.value)} ${r.unit}`,
      r.baseline ?? '-',
      r.baseline_value === null ? '-' : `${fmt(r.baseline_value)} ${r.unit}`,
      r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`,
      r.target ? `${r.target} ${verdict(r)}` : '',
    ]);
    const header = ['name', 'value unit', 'baseline', 'baseline value', 'ratio', 'target'];
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
    const line = (c: string[]) => c.map((v, i) => (i === 1 || i === 3 || i === 4 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join(' | ').trimEnd();
    console.log('');
    console.log(line(header));
    console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
    for (const c of cells) console.log(line(c));
    const targeted = this.rows.filter((r) => r.target);
    if (targeted.length > 0 || this.unmeasured.length > 0) {
      console.log('\ntargets (ratios of medians from the same run):');
      for (const r of targeted) console.log(`  ${verdict(r)}  ${r.name} ${fmt(r.value)} ${r.unit} vs ${r.baseline} ${fmt(r.baseline_value)} ${r.unit} = ${r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`}; target ${r.target}`);
      for (const u of this.unmeasured) console.log(`  ----  ${u}`);
    }
    if (this.notes.length > 0) {
      console.log('\nnotes:');
      for (const n of this.notes) console.log(`  - ${n}`);
    }
  }

  writeJson(file: string): void {
    const out = this.rows.map(({ name, value, unit, baseline, baseline_value, ratio, target, pass }) => ({ name, value, unit, baseline, baseline_value, ratio, ...(target ? { target, pass } : {}) }));
    writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  }
}

const verdict = (r: Row) => (r.pass ? 'PASS' : 'MISS');
