/**
 * The Prometheus text exposition format, version 0.0.4: for each metric family a `# HELP` and a
 * `# TYPE` line, then all its samples together, `name{label="value",...} value`. Label values
 * escape backslash, double quote and newline; HELP text escapes backslash and newline. Names
 * and label names are checked here, so a typo is an error at once, never a scrape that fails.
 */

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'counter' | 'gauge';

/** Label name → value, written in the given order. */
export type Labels = Readonly<Record<string, string>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : '\\n'));
}

export function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === '\\' ? '\\\\' : '\\n'));
}

/**
 * A label set as the text between the braces, `a="x",b="y"`: validated and escaped once, so
 * that a scrape of many devices writes each device's and each peer's labels once, not once a
 * sample. Join two with a comma.
 */
export function labelText(labels: Labels): string {
  const parts: string[] = [];
  for (const n of Object.keys(labels)) {
    if (!LABEL_NAME.test(n) || n.startsWith('__')) throw new Error(`invalid label name ${JSON.stringify(n)}`);
    parts.push(`${n}="${escapeLabelValue(labels[n]!)}"`);
  }
  return parts.join(',');
}

/** A sample value as Go's ParseFloat (Prometheus) reads it: integers in full, NaN, +Inf, -Inf. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

export class MetricFamily {
  private readonly lines: string[] = [];

  constructor(
    readonly name: string,
    readonly type: MetricType,
    readonly help: string,
  ) {}

  /** One sample; each label set at most once per family (the caller's invariant). */
  add(labels: Labels, value: number): void {
    this.addText(labelText(labels), value);
  }

  /** One sample with labels made by labelText ('' for none). */
  addText(labels: string, value: number): void {
    this.lines.push(labels === '' ? `${this.name} ${formatValue(value)}` : `${this.name}{${labels}} ${formatValue(value)}`);
  }

  get size(): number {
    return this.lines.length;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    for (const l of this.lines) out.push(l);
  }
}

/** A whole scrape: families in the order they were declared. */
export class Exposition {
  private readonly families = new Map<string, MetricFamily>();

  /** Declare a family (or get the one declared under that name, which must match). */
  family(name: string, type: MetricType, help: string): MetricFamily {
    const had = this.families.get(name);
    if (had !== undefined) {
      if (had.type !== type) throw new Error(`metric ${name} declared as ${had.type} and ${type}`);
      return had;
    }
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    if (type === 'counter' && !name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
    const f = new MetricFamily(name, type, help);
    this.families.set(name, f);
    return f;
  }

  /** The exposition text; families without samples are left out. Ends with a newline. */
  text(): string {
    const out: string[] = [];
    for (const f of this.families.values()) if (f.size > 0) f.render(out);
    out.push('');
    return out.join('\n');
  }
}
