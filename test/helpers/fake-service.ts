/**
 * A fake host service for the client's tests: it speaks the control protocol (docs/SERVICE.md)
 * over tun/control.ts and behaves as told (answer after some heartbeats, stay silent, hang up,
 * answer garbage). It runs in the test process (FakeService) or as a process of its own
 * (runFakeService: the main of a generated dist/src/cli/service.js, see client-build.ts),
 * which logs what it saw, one JSON object per line.
 *
 * Imports stay within tun/ and node: client-build.ts transpiles exactly these files.
 */
import { appendFileSync, closeSync, fstatSync, readFileSync, readlinkSync } from 'node:fs';
import { type ControlConnection, ControlListener, type PeerCredentials } from '../../tun/control.js';
import { decodeRequest, encodeDone, encodeWait, MAX_MESSAGE } from '../../tun/control-protocol.js';

export type Behaviour =
  /** `heartbeats` waits `heartbeatMs` apart, then done (stdout: the request as JSON unless given). */
  | { kind: 'answer'; heartbeats?: number; heartbeatMs?: number; code?: number; stdout?: string; stderr?: string }
  /** Reads the request and never answers. */
  | { kind: 'silent' }
  /** Hangs up without an answer. */
  | { kind: 'close' }
  /** Answers with a `done` that has a field too few. */
  | { kind: 'malformed' };

export interface SeenRequest {
  /** The namespace field as sent, or `malformed: ...`. */
  ns: string;
  args: string[];
  /** Identity of the descriptor that came along, or null. */
  nsDev: number | null;
  nsIno: number | null;
  fdsRefused: boolean;
  peer: PeerCredentials;
  /** The client's /proc/PID/status lines about privileges, read when its request arrived. */
  privileges: Record<string, string>;
}

/** What the answer's stdout carries by default. */
export interface Echo {
  ns: string;
  args: string[];
  nsIno: number | null;
}

function privileges(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  try {
    for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
      const m = /^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs):\s*(\S+)/.exec(line);
      if (m) out[m[1]!] = m[2]!;
    }
  } catch {
    /* the client is gone */
  }
  return out;
}

export class FakeService {
  readonly seen: SeenRequest[] = [];
  /** Connections accepted (with or without a request). */
  accepted = 0;
  readonly #listener: ControlListener;
  readonly #open = new Set<() => void>();
  readonly #behaviour: Behaviour;
  readonly #onRequest: ((r: SeenRequest) => void) | undefined;

  constructor(name: string, behaviour: Behaviour, opts: { netnsFd?: number; onRequest?: (r: SeenRequest) => void } = {}) {
    this.#behaviour = behaviour;
    this.#onRequest = opts.onRequest;
    this.#listener = ControlListener.listen(name, opts.netnsFd !== undefined ? { netnsFd: opts.netnsFd } : {});
    this.#listener.watch(() => {
      for (;;) {
        const c = this.#listener.accept();
        if (!c) break;
        this.accepted++;
        this.#serve(c);
      }
    });
  }

  /** Closes the listener and every connection. */
  close(): void {
    this.#listener.close();
    for (const end of [...this.#open]) end();
  }

  #serve(conn: ControlConnection): void {
    const buf = new Uint8Array(MAX_MESSAGE);
    const timers: NodeJS.Timeout[] = [];
    const end = (): void => {
      for (const t of timers) clearTimeout(t);
      conn.close();
      this.#open.delete(end);
    };
    this.#open.add(end);
    let got = false;
    conn.watch(() => {
      for (;;) {
        if (conn.closed) return;
        const p = conn.receive(buf);
        if (p === null) return;
        if (p.length === 0) {
          end();
          return;
        }
        if (got) {
          if (p.fd >= 0) closeSync(p.fd);
          continue;
        }
        got = true;
        let nsDev: number | null = null;
        let nsIno: number | null = null;
        if (p.fd >= 0) {
          const st = fstatSync(p.fd);
          nsDev = st.dev;
          nsIno = st.ino;
          closeSync(p.fd);
        }
        const d = decodeRequest(buf.subarray(0, p.length));
        const ns = d.ok ? (d.request.ns.kind === 'errno' ? `errno:${d.request.ns.errno}` : d.request.ns.kind) : `malformed: ${d.reason}`;
        const seen: SeenRequest = {
          ns,
          args: d.ok ? d.request.args : [],
          nsDev,
          nsIno,
          fdsRefused: p.fdsRefused,
          peer: conn.peer,
          privileges: privileges(conn.peer.pid),
        };
        this.seen.push(seen);
        this.#onRequest?.(seen);
        this.#respond(conn, seen, timers, end);
      }
    });
  }

  #respond(conn: ControlConnection, seen: SeenRequest, timers: NodeJS.Timeout[], end: () => void): void {
    const b = this.#behaviour;
    switch (b.kind) {
      case 'silent':
        return;
      case 'close':
        end();
        return;
      case 'malformed':
        conn.send(new TextEncoder().encode('WGTS1\0done\x000\0only stdout'));
        end();
        return;
      case 'answer': {
        const echo: Echo = { ns: seen.ns, args: seen.args, nsIno: seen.nsIno };
        const done = encodeDone(b.code ?? 0, b.stdout ?? `${JSON.stringify(echo)}\n`, b.stderr ?? '');
        let left = b.heartbeats ?? 0;
        const step = (): void => {
          if (conn.closed) return;
          if (left-- > 0) {
            conn.send(encodeWait());
            timers.push(setTimeout(step, b.heartbeatMs ?? 1000));
            return;
          }
          conn.send(done);
          end();
        };
        step();
      }
    }
  }
}

/** Configuration of a fake service that runs as its own process. */
export interface StandaloneConfig {
  name: string;
  behaviour: Behaviour;
  /** JSON lines: `listening` (with the process's situation), `inuse`, `request`. */
  logPath: string;
  /** Exit after this long whatever happens (a test that crashed leaves nothing running). */
  lifetimeMs: number;
}

/** Session id and parent pid from /proc/self/stat. */
function statFields(): { ppid: number; pgid: number; sid: number } {
  const s = readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), pgid: Number(f[2]), sid: Number(f[3]) };
}

function fdTarget(fd: number): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return 'closed';
  }
}

export function runFakeService(cfg: StandaloneConfig): void {
  const log = (o: object): void => appendFileSync(cfg.logPath, `${JSON.stringify({ pid: process.pid, ...o })}\n`);
  let svc: FakeService;
  try {
    svc = new FakeService(cfg.name, cfg.behaviour, { onRequest: (r) => log({ event: 'request', ns: r.ns, args: r.args, nsIno: r.nsIno }) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      log({ event: 'inuse' });
      process.exit(0);
    }
    throw e;
  }
  const umask = /^Umask:\s*(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '?';
  log({
    event: 'listening',
    ...statFields(),
    uid: process.getuid?.(),
    cwd: process.cwd(),
    env: Object.keys(process.env),
    stdio: [0, 1, 2].map(fdTarget),
    umask,
  });
  setTimeout(() => {
    svc.close();
    process.exit(0);
  }, cfg.lifetimeMs).unref();
  // Keep running until the lifetime ends or a signal comes (the listener keeps the loop alive).
}
