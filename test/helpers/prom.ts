/**
 * A strict reader of the Prometheus text format (0.0.4) for the metrics tests, written from the
 * format's description, independently of src/metrics/exposition.ts: every line is a HELP, a
 * TYPE or a sample, a family's samples follow its TYPE, label values are unescaped.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  samples: Sample[];
  help: Map<string, string>;
  type: Map<string, string>;
}

function parseValue(v: string): number {
  if (v === '+Inf') return Number.POSITIVE_INFINITY;
  if (v === '-Inf') return Number.NEGATIVE_INFINITY;
  if (v === 'NaN') return Number.NaN;
  if (!/^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/.test(v)) throw new Error(`bad sample value ${JSON.stringify(v)}`);
  return Number(v);
}

/** The labels of `{a="x",b="y"}` starting at text[i] === '{'; returns them and the index after '}'. */
function parseLabels(text: string, i: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++;
  while (text[i] !== '}') {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(text.slice(i));
    if (!m) throw new Error(`bad label at ${JSON.stringify(text.slice(i, i + 30))}`);
    i += m[0].length;
    let v = '';
    for (;;) {
      const c = text[i++];
      if (c === undefined) throw new Error('unterminated label value');
      if (c === '"') break;
      if (c === '\\') {
        const e = text[i++];
        if (e === 'n') v += '\n';
        else if (e === '\\' || e === '"') v += e;
        else throw new Error(`bad escape \\${e}`);
      } else v += c;
    }
    if (m[1]! in labels) throw new Error(`label ${m[1]} twice`);
    labels[m[1]!] = v;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error('expected , or }');
  }
  return [labels, i + 1];
}

export function parseExposition(text: string): Scrape {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const scrape: Scrape = { samples: [], help: new Map(), type: new Map() };
  const seen = new Set<string>();
  let current = '';
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) {
      const [name] = line.slice(7).split(' ', 1);
      scrape.help.set(
        name!,
        line
          .slice(8 + name!.length)
          .replace(/\\n/g, '\n')
          .replace(/\\\\/g, '\\'),
      );
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      if (scrape.type.has(name!)) throw new Error(`TYPE of ${name} twice`);
      scrape.type.set(name!, type!);
      current = name!;
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (!m) throw new Error(`bad line ${JSON.stringify(line)}`);
    const name = m[1]!;
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') [labels, i] = parseLabels(line, i);
    if (line[i] !== ' ') throw new Error(`bad line ${JSON.stringify(line)}`);
    if (name !== current) throw new Error(`sample of ${name} outside its family (after TYPE ${current})`);
    const id = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(id)) throw new Error(`duplicate sample ${id}`);
    seen.add(id);
    scrape.samples.push({ name, labels, value: parseValue(line.slice(i + 1)) });
  }
  return scrape;
}

/** Samples of `name` whose labels include `labels`. */
export function samplesOf(s: Scrape, name: string, labels: Record<string, string> = {}): Sample[] {
  return s.samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
}

/** The value of the one sample of `name` with `labels`; throws unless exactly one matches. */
export function sampleValue(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  const m = samplesOf(s, name, labels);
  if (m.length !== 1) throw new Error(`${m.length} samples of ${name} ${JSON.stringify(labels)}`);
  return m[0]!.value;
}
