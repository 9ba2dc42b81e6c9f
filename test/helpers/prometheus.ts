/**
 * A real Prometheus server (Debian's `prometheus` package) for the metrics system tests: run in
 * a network namespace the test made, on a loopback port there, with its own configuration and
 * storage in a temporary directory, scraping the given targets every second. `stop()` kills it
 * and removes the directory; call it in a finally block (or afterAll).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nsRun } from './netns.js';
import { waitFor, which } from './proc.js';

export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

export class Prometheus {
  private log = '';

  private constructor(
    readonly ns: string,
    readonly port: number,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    const keep = (d: Buffer) => {
      this.log = (this.log + d.toString('utf8')).slice(-16_384);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
  }

  /** Start it in `ns` on 127.0.0.1:`port`, scraping `targets` (host:port) as job `job`; resolves once it is ready. */
  static async start(ns: string, port: number, job: string, targets: readonly string[]): Promise<Prometheus> {
    const dir = mkdtempSync(join(tmpdir(), 'wgts-prometheus-'));
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        `  - job_name: ${job}`,
        '    static_configs:',
        `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
        '',
      ].join('\n'),
    );
    const child = spawn(
      which('ip')!,
      [
        'netns',
        'exec',
        ns,
        which('prometheus')!,
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const p = new Prometheus(ns, port, dir, child);
    const ready = await waitFor(
      async () => {
        if (child.exitCode !== null) return true;
        try {
          return (await p.curl(['/-/ready'])).includes('Ready');
        } catch {
          return false;
        }
      },
      30_000,
      200,
    );
    if (!ready || child.exitCode !== null) {
      const why = p.log.trim().split('\n').slice(-3).join(' | ');
      await p.stop();
      throw new Error(`prometheus did not start: ${why}`);
    }
    return p;
  }

  private async curl(args: string[]): Promise<string> {
    const [path, ...rest] = args;
    const r = await nsRun(this.ns, which('curl')!, ['-sS', '--max-time', '5', ...rest, `http://127.0.0.1:${this.port}${path}`]);
    return r.stdout;
  }

  /** An instant query through the HTTP API (/api/v1/query). */
  async query(q: string): Promise<PromSample[]> {
    const text = await this.curl(['/api/v1/query', '-G', '--data-urlencode', `query=${q}`]);
    const j = JSON.parse(text) as {
      status: string;
      error?: string;
      data: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
    };
    if (j.status !== 'success') throw new Error(`query ${q}: ${j.error ?? j.status}`);
    return j.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const gone = await waitFor(() => this.child.exitCode !== null || this.child.signalCode !== null, 10_000, 50);
      if (!gone) this.child.kill('SIGKILL');
      await waitFor(() => this.child.exitCode !== null || this.child.signalCode !== null, 5000, 50);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
