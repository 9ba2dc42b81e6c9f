/**
 * The service's side of the control protocol (docs/SERVICE.md): one request per connection,
 * answered in order, one at a time (so that a check and the create it guards are atomic),
 * with a heartbeat to every waiting client each second, and cancellation when a client goes
 * away before its answer. Every input is bounded: connections, the request's size and fields,
 * and the time a connection may stay silent.
 */
import { closeSync } from 'node:fs';
import type { Logger } from '../../noise/types.js';
import { decodeRequest, encodeDone, encodeWait, HEARTBEAT_MS, MAX_MESSAGE } from '../../tun/control-protocol.js';
import type { Caller, NsInput } from './cwg-system.js';

/** A connection as the transport (tun/control.ts) delivers it: the kernel's credentials, packets, close. */
export interface ControlConnection {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
  /** Called with each packet and the descriptor that came with it (-1: none; the callee owns it). */
  onPacket(cb: (data: Uint8Array, fd: number) => void): void;
  /** Called once when the peer has closed or the connection failed. */
  onClose(cb: () => void): void;
  /** Send one packet; false when it could not be sent (the peer is gone, or its buffer is full). */
  send(data: Uint8Array): boolean;
  close(): void;
}

/** A parsed request. */
export interface ControlRequest {
  readonly caller: Caller;
  readonly ns: NsInput;
  readonly argv: readonly string[];
  /** Aborted when the client goes away before its answer. */
  readonly signal: AbortSignal;
}

export interface ControlResponse {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export type ControlHandler = (req: ControlRequest) => Promise<ControlResponse>;

/** Most arguments a request may carry (the longest command has five). */
export const MAX_ARGS = 16;
/** Most connections at once; more are answered "busy" at once (a hundred parallel creates fit). */
export const MAX_CONNECTIONS = 1024;
/** The time a connection may take to send its request. */
export const REQUEST_TIMEOUT_MS = 5000;

/** Parse a request packet, or say why it is not one. `fd`: the descriptor that came with it, or -1. */
export function parseRequest(data: Uint8Array, fd: number): { ns: NsInput; argv: string[] } | string {
  if (data.length > MAX_MESSAGE) return 'request too large';
  const r = decodeRequest(data);
  if (!r.ok) return r.reason;
  const { ns, args } = r.request;
  if (args.length === 0) return 'empty request';
  if (args.length > MAX_ARGS) return `too many arguments (at most ${MAX_ARGS})`;
  if (ns.kind === 'fd' && fd < 0) return "the request says 'fd' but carries no descriptor";
  if (ns.kind !== 'fd' && fd >= 0) return 'a descriptor the request does not announce';
  return { ns: ns.kind === 'fd' ? { kind: 'fd', fd } : ns, argv: args };
}

const WAIT = encodeWait();

interface Pending {
  readonly conn: ControlConnection;
  readonly abort: AbortController;
  done: boolean;
}

export interface ControlStats {
  connections: number;
  requests: number;
  refused: number;
  cancelled: number;
}

export class ControlServer {
  readonly stats: ControlStats = { connections: 0, requests: 0, refused: 0, cancelled: 0 };
  private readonly open = new Set<ControlConnection>();
  private readonly waiting = new Set<Pending>();
  private tail: Promise<void> = Promise.resolve();
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly handler: ControlHandler,
    private readonly logger: Logger,
  ) {
    this.heartbeat = setInterval(() => {
      for (const p of this.waiting) if (!p.done) p.conn.send(WAIT);
    }, HEARTBEAT_MS);
  }

  /**
   * Answer no request before `ready` settles (the service recovering its devices): clients are
   * queued meanwhile and hear heartbeats, so none gives up and none sees a half-made registry.
   */
  holdUntil(ready: Promise<unknown>): void {
    this.tail = this.tail.then(
      () => ready.then(() => undefined),
      () => undefined,
    );
  }

  /** Number of connections open now. */
  get connections(): number {
    return this.open.size;
  }

  /** Take a new connection from the transport. */
  accept(conn: ControlConnection): void {
    this.stats.connections++;
    if (this.closed || this.open.size >= MAX_CONNECTIONS) {
      this.stats.refused++;
      this.finish(conn, { code: 1, stdout: '', stderr: 'cwg: the host service is busy (too many connections); try again\n' });
      return;
    }
    this.open.add(conn);
    let got = false;
    const silence = setTimeout(() => {
      if (!got) conn.close();
    }, REQUEST_TIMEOUT_MS);
    let pending: Pending | null = null;
    conn.onClose(() => {
      clearTimeout(silence);
      this.open.delete(conn);
      if (pending !== null && !pending.done) {
        this.stats.cancelled++;
        pending.abort.abort('client gone');
      }
    });
    conn.onPacket((data, fd) => {
      if (got) {
        // One request per connection: anything after it is a protocol error.
        closeFd(fd);
        conn.close();
        return;
      }
      got = true;
      clearTimeout(silence);
      const parsed = parseRequest(data, fd);
      if (typeof parsed === 'string') {
        closeFd(fd);
        this.stats.refused++;
        this.finish(conn, { code: 1, stdout: '', stderr: `cwg: ${parsed}\n` });
        return;
      }
      const p: Pending = { conn, abort: new AbortController(), done: false };
      pending = p;
      this.waiting.add(p);
      this.stats.requests++;
      const caller: Caller = { uid: conn.uid, gid: conn.gid, groups: conn.groups };
      this.tail = this.tail.then(async () => {
        let res: ControlResponse;
        try {
          res = p.abort.signal.aborted
            ? { code: 1, stdout: '', stderr: '' }
            : await this.handler({ caller, ns: parsed.ns, argv: parsed.argv, signal: p.abort.signal });
        } catch (e) {
          this.logger.error(`control: ${(e as Error).stack ?? String(e)}`);
          res = { code: 1, stdout: '', stderr: `cwg: internal error in the host service: ${(e as Error).message}\n` };
        } finally {
          if (parsed.ns.kind === 'fd') closeFd(parsed.ns.fd);
        }
        p.done = true;
        this.waiting.delete(p);
        this.finish(conn, res);
      });
    });
  }

  private finish(conn: ControlConnection, res: ControlResponse): void {
    conn.send(encodeDone(res.code, clean(res.stdout), clean(res.stderr)));
    conn.close();
  }

  /** Stop taking requests; wait for the one running. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    await this.tail;
    for (const c of this.open) c.close();
  }
}

/** Output text as a `done` field can carry it: no NUL, and within the message size. */
function clean(text: string): string {
  const t = text.replaceAll('\0', '');
  return t.length > 16384 ? `${t.slice(0, 16384)}\n` : t;
}

/** Close a descriptor that came with a packet (ours once received). */
function closeFd(fd: number): void {
  if (fd < 0) return;
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}
