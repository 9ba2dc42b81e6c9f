import { createServer, type Server, type Socket } from 'node:net';
import type { ZoneResolver } from '../../noise/iptext.js';
import { type DeviceChange, type Logger, silentLogger } from '../../noise/types.js';
import { bindPathFor, claimSocketPath, publishSocket, removeIfOurs, withPrivateUmask } from '../socket-file.js';
import { EBUSY, EINVAL, EIO, EMSGSIZE, ENOANO, ENOBUFS, EPROTO, ETIMEDOUT, formatErrno, SetParser } from './protocol.js';

export interface UapiHandler {
  /** The body of a get answer (formatGet's output). */
  get(): string | Promise<string>;
  /** Apply a validated change; returns 0 or a positive errno (EADDRINUSE, EIO, ...). */
  set(change: DeviceChange): number | Promise<number>;
  /** Resolves interface names in endpoint zones where the UDP socket lives (default: indexes only). */
  zoneIndex?: ZoneResolver;
  /**
   * Called when connections have let go of much memory (RECLAIM_BYTES since the last call; at
   * most once a second, a moment later): the host may collect garbage then, so that memory a
   * dropped transaction held is returned instead of waiting for the next major collection.
   */
  reclaim?: () => void;
}

export interface UapiServerOptions {
  /** Longest accepted line, in bytes (default 8 KiB). Longer: EPROTO. */
  maxLineBytes?: number;
  /** Largest set transaction, in bytes of text, every line counted (default 64 MiB). Larger: EMSGSIZE. */
  maxRequestBytes?: number;
  /** Most lines in one set transaction (default 2,097,152). More: EMSGSIZE. */
  maxRequestLines?: number;
  /**
   * Bytes all connections together may hold (default 64 MiB): open set transactions (what
   * their validated lines hold, an upper estimate), partial lines, unread answers. The
   * connection whose input would pass it gets ENOBUFS.
   */
  maxBufferedBytes?: number;
  /** Most connections open at once (default 64); one more is answered EBUSY. */
  maxConnections?: number;
  /**
   * A connection that sends nothing, or does not read its answer, for this long is answered
   * ETIMEDOUT and closed (default 10 s). Time spent waiting for our own work does not count.
   */
  idleTimeoutMs?: number;
}

/** What the server holds now; for tests and diagnostics. */
export interface UapiServerStats {
  connections: number;
  /** Bytes accounted against maxBufferedBytes now. */
  bufferedBytes: number;
  /** The most ever accounted at once. */
  peakBufferedBytes: number;
}

export interface UapiServer {
  readonly path: string;
  stats(): UapiServerStats;
  /** Stop listening, drop the connections and remove the socket file (if it is still ours). */
  close(): Promise<void>;
}

/** Another live process answers on the socket path (e.g. a daemon for the same interface). */
export class UapiSocketInUseError extends Error {
  override name = 'UapiSocketInUseError';
  readonly code = 'EUAPIINUSE';
  constructor(readonly path: string) {
    super(`UAPI socket ${path} is in use by another process`);
  }
}

const DEFAULTS: Required<UapiServerOptions> = {
  maxLineBytes: 8 * 1024,
  maxRequestBytes: 64 * 1024 * 1024,
  maxRequestLines: 1 << 21,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxConnections: 64,
  idleTimeoutMs: 10_000,
};

/**
 * After answering an errno, a connection reads and drops what its client still sends for this
 * long, so that a client still writing its request can then read the errno and an orderly EOF
 * (closing with unread data would reset the connection instead); then it is destroyed.
 */
const LINGER_MS = 2000;

/** Answers are written in pieces of this size (see Connection.run). */
const WRITE_PIECE = 64 * 1024;

/** UapiHandler.reclaim is called once this much has been let go, this long after, at most once a second. */
const RECLAIM_BYTES = 16 * 1024 * 1024;
const RECLAIM_DELAY_MS = 200;
const RECLAIM_INTERVAL_MS = 1000;

function listenOnce(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      server.off('listening', onListening);
      reject(e);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    withPrivateUmask(() => server.listen(path));
  });
}

/** Serialize requests across connections, like wireguard-go's ipcMutex. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<R>(fn: () => Promise<R>): Promise<R> {
    const p = this.tail.then(fn);
    this.tail = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }
}

/** The bytes all connections hold, against one budget; much let go asks the host to reclaim it. */
class Budget {
  total = 0;
  peak = 0;
  private released = 0;
  private lastReclaim = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly max: number,
    private readonly reclaim: (() => void) | undefined,
    private readonly logger: Logger,
  ) {}

  /** Replace one holder's `from` bytes by `to`. */
  move(from: number, to: number): void {
    this.total += to - from;
    if (this.total > this.peak) this.peak = this.total;
  }

  /** `bytes` a transaction or an answer held are garbage now. */
  letGo(bytes: number): void {
    if (!this.reclaim || bytes <= 0) return;
    this.released += bytes;
    if (this.released >= RECLAIM_BYTES && !this.timer) {
      const wait = Math.max(RECLAIM_DELAY_MS, this.lastReclaim + RECLAIM_INTERVAL_MS - performance.now());
      this.timer = setTimeout(() => this.reclaimNow(), wait);
      this.timer.unref();
    }
  }

  private reclaimNow(): void {
    this.timer = null;
    this.released = 0;
    this.lastReclaim = performance.now();
    try {
      this.reclaim?.();
    } catch (e) {
      this.logger.error(`UAPI: reclaiming memory failed: ${(e as Error).message}`);
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

interface Shared {
  readonly handler: UapiHandler;
  readonly logger: Logger;
  readonly mutex: Mutex;
  readonly budget: Budget;
  readonly limits: Required<UapiServerOptions>;
}

type State = 'op' | 'get' | 'set';

class Connection {
  /** Received bytes not yet split into lines: chunks[0] from `pos` on, then the others. */
  private chunks: Buffer[] = [];
  private pos = 0;
  private queuedBytes = 0;
  /** The start of a line whose '\n' has not arrived yet (latin1: one char per byte). */
  private partial = '';
  private state: State = 'op';
  /** The open set transaction, and its size so far. */
  private parser: SetParser | null = null;
  private txLines = 0;
  private txBytes = 0;
  /** A complete set waiting for the mutex or being applied (still holds its change). */
  private inflight: SetParser | null = null;
  /** Bytes of our last answer the client has not read yet. */
  private unsent = 0;
  /** Bytes accounted in the shared budget for this connection. */
  private held = 0;
  private busy = false;
  private ended = false;
  /** No more requests: answered an errno, hung up, or gone. */
  private closing = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly sock: Socket,
    private readonly ctx: Shared,
    onClose: () => void,
  ) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('end', () => {
      this.ended = true;
      if (this.closing) this.sock.destroy();
      else this.pump();
    });
    sock.on('error', (e) => {
      ctx.logger.verbose(`UAPI: connection error: ${e.message}`);
      this.destroy();
    });
    sock.on('close', () => {
      this.closing = true;
      this.clearTimers();
      this.release();
      this.inflight = null;
      this.unsent = 0;
      this.account();
      onClose();
    });
    this.armIdle();
  }

  /** Drop the connection now (server shutdown, socket error). */
  destroy(): void {
    this.closing = true;
    this.clearTimers();
    this.release();
    this.account();
    this.sock.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return; // lingering: read and dropped
    this.chunks.push(chunk);
    this.queuedBytes += chunk.length;
    this.pump();
  }

  /** Answer with an errno and hang up: the stream cannot be resynchronized, or a limit was hit. */
  private hangUp(errno: number, why: string): void {
    if (this.closing) return;
    this.ctx.logger.error(`UAPI: ${why}`);
    this.closing = true;
    this.release();
    this.account();
    this.clearTimers();
    this.sock.end(formatErrno(errno));
    if (this.ended) {
      this.sock.once('finish', () => this.sock.destroy());
      return;
    }
    this.sock.resume();
    this.lingerTimer = setTimeout(() => this.sock.destroy(), LINGER_MS);
    this.lingerTimer.unref();
  }

  /** Forget the input held: unparsed bytes, the partial line, the open transaction. */
  private release(): void {
    this.chunks = [];
    this.pos = 0;
    this.queuedBytes = 0;
    this.partial = '';
    if (this.parser) this.ctx.budget.letGo(this.parser.heldBytes);
    this.parser = null;
  }

  private clearTimers(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.idleTimer = null;
    this.lingerTimer = null;
  }

  /** Waiting for the client (to send, or to read): the idle timeout runs from now. */
  private armIdle(): void {
    if (this.closing) return;
    if (this.idleTimer) {
      this.idleTimer.refresh();
      return;
    }
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      this.hangUp(ETIMEDOUT, `connection idle for ${this.ctx.limits.idleTimeoutMs} ms`);
    }, this.ctx.limits.idleTimeoutMs);
    this.idleTimer.unref();
  }

  /** Waiting for our own work: the client is not idle. */
  private disarmIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** What this connection holds now. */
  private holding(): number {
    return this.queuedBytes - this.pos + this.partial.length + (this.parser?.heldBytes ?? 0) + (this.inflight?.heldBytes ?? 0) + this.unsent;
  }

  /** Update the shared budget with what this connection holds now. */
  private account(): void {
    const now = this.closing ? (this.inflight?.heldBytes ?? 0) : this.holding();
    this.ctx.budget.move(this.held, now);
    this.held = now;
  }

  /** Account for input that grew what we hold; false (and hung up) if that passes the budget. */
  private grow(): boolean {
    const now = this.holding();
    const b = this.ctx.budget;
    if (now > this.held && b.total - this.held + now > b.max) {
      this.hangUp(ENOBUFS, `connections hold more than ${b.max} bytes`);
      return false;
    }
    b.move(this.held, now);
    this.held = now;
    return true;
  }

  /** Split the received bytes into lines and handle them, until we wait for the client or for our own work. */
  private pump(): void {
    const maxLine = this.ctx.limits.maxLineBytes;
    while (!this.busy && !this.closing) {
      const chunk = this.chunks[0];
      if (chunk === undefined) {
        if (this.ended) {
          this.atEof();
          continue;
        }
        if (!this.grow()) return;
        this.armIdle();
        return;
      }
      const nl = chunk.indexOf(0x0a, this.pos);
      const end = nl < 0 ? chunk.length : nl;
      const len = this.partial.length + (end - this.pos);
      if (len > maxLine) {
        this.hangUp(EPROTO, `line longer than ${maxLine} bytes`);
        return;
      }
      // A line inside a set that already failed is only counted: it holds nothing.
      const dropped = nl >= 0 && len > 0 && this.state === 'set' && this.parser !== null && this.parser.failed !== null;
      if (dropped) this.partial = '';
      else if (nl < 0 || this.partial !== '') this.partial += chunk.toString('latin1', this.pos, end);
      if (nl < 0) {
        this.chunks.shift();
        this.queuedBytes -= chunk.length;
        this.pos = 0;
        continue;
      }
      const line = dropped ? null : this.partial !== '' ? this.partial : chunk.toString('latin1', this.pos, end);
      this.partial = '';
      this.pos = nl + 1;
      if (this.pos >= chunk.length) {
        this.chunks.shift();
        this.queuedBytes -= chunk.length;
        this.pos = 0;
      }
      this.onLine(line, len);
    }
    if (this.busy && !this.closing) this.sock.pause();
  }

  /**
   * The client closed its side: a last line without '\n' still counts, and an unterminated
   * request is handled as if its blank line had come (wireguard-go reads to EOF the same way).
   */
  private atEof(): void {
    if (this.partial !== '') {
      const line = this.partial;
      this.partial = '';
      this.onLine(line, line.length);
      return;
    }
    if (this.state !== 'op') {
      this.onLine('', 0);
      return;
    }
    this.closing = true;
    this.clearTimers();
    this.account();
    this.sock.end();
  }

  /** One line of `len` bytes (`line` is null for a line of a failed set, which is not needed). */
  private onLine(line: string | null, len: number): void {
    switch (this.state) {
      case 'op':
        if (line === 'get=1') this.state = 'get';
        else if (line === 'set=1') {
          this.state = 'set';
          this.parser = new SetParser(this.ctx.handler.zoneIndex);
          this.txLines = 0;
          this.txBytes = 0;
        } else {
          this.hangUp(EPROTO, `invalid UAPI operation: ${JSON.stringify((line ?? '').slice(0, 64))}`);
        }
        return;
      case 'get':
        if (line !== '') {
          this.hangUp(EINVAL, 'trailing characters in UAPI get');
          return;
        }
        this.run(async () => {
          let body: string;
          try {
            body = await this.ctx.handler.get();
          } catch (e) {
            this.ctx.logger.error(`UAPI: get failed: ${(e as Error).message}`);
            return formatErrno(EIO);
          }
          return body + formatErrno(0);
        });
        return;
      case 'set': {
        const parser = this.parser!;
        if (len > 0) {
          const { maxRequestLines, maxRequestBytes } = this.ctx.limits;
          this.txLines++;
          this.txBytes += len + 1;
          if (this.txLines > maxRequestLines || this.txBytes > maxRequestBytes) {
            this.hangUp(EMSGSIZE, `set request longer than ${this.txLines > maxRequestLines ? `${maxRequestLines} lines` : `${maxRequestBytes} bytes`}`);
            return;
          }
          if (line === null) return;
          const before = parser.heldBytes;
          if (parser.line(line)) this.grow();
          else this.ctx.budget.letGo(before); // failed: what it held is dropped
          return;
        }
        this.parser = null;
        this.inflight = parser;
        this.run(async () => {
          const held = parser.heldBytes;
          const parsed = parser.finish();
          this.inflight = null;
          this.account();
          if ('errno' in parsed) {
            this.ctx.logger.error(`UAPI: ${parsed.message}`);
            return formatErrno(parsed.errno);
          }
          let errno: number;
          try {
            errno = await this.ctx.handler.set(parsed.change);
          } catch (e) {
            this.ctx.logger.error(`UAPI: set failed: ${(e as Error).message}`);
            errno = ENOANO;
          }
          if (!Number.isInteger(errno) || errno < 0) errno = ENOANO;
          this.ctx.budget.letGo(held); // the change it made is applied, or dropped
          return formatErrno(errno);
        });
        return;
      }
    }
  }

  private run(op: () => Promise<string>): void {
    this.busy = true;
    this.state = 'op';
    this.disarmIdle();
    void this.ctx.mutex
      .run(op)
      .catch((e: unknown) => {
        this.ctx.logger.error(`UAPI: ${(e as Error).message}`);
        return formatErrno(ENOANO);
      })
      .then((reply) => {
        if (this.closing) return;
        // A client that does not read its answers must not make us buffer without bound: one
        // answer at most, counted in the budget, written in pieces so that a client reading
        // slowly shows progress; one that reads nothing for the idle timeout is dropped.
        const out = Buffer.from(reply, 'latin1');
        let off = 0;
        const more = (): void => {
          if (this.closing) return;
          while (off < out.length) {
            const piece = out.subarray(off, off + WRITE_PIECE);
            off += piece.length;
            if (!this.sock.write(piece)) {
              this.unsent = out.length - off + this.sock.writableLength;
              this.account();
              this.armIdle();
              this.sock.once('drain', more);
              return;
            }
          }
          this.busy = false;
          this.unsent = 0;
          this.account();
          this.ctx.budget.letGo(out.length);
          this.sock.resume();
          this.pump();
        };
        more();
      });
  }
}

/**
 * Listen for UAPI connections on `socketPath`. Throws UapiSocketInUseError when another live
 * process answers there (the caller words the message, e.g. "IFNAME is already in use").
 */
export async function serveUapi(socketPath: string, handler: UapiHandler, logger: Logger = silentLogger, options: UapiServerOptions = {}): Promise<UapiServer> {
  const limits: Required<UapiServerOptions> = { ...DEFAULTS };
  for (const k of Object.keys(DEFAULTS) as Array<keyof UapiServerOptions>) {
    const v = options[k];
    if (v !== undefined) {
      if (!Number.isFinite(v) || v <= 0) throw new RangeError(`UAPI server option ${k} must be a positive number`);
      limits[k] = v;
    }
  }
  const shared: Shared = { handler, logger, mutex: new Mutex(), budget: new Budget(limits.maxBufferedBytes, handler.reclaim, logger), limits };
  let refused = 0;
  let refusedLogged = 0;

  const conns = new Set<Connection>();
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (sock) => {
    if (conns.size >= limits.maxConnections) {
      // Refused: the errno, then closed; logged at most once a second, with the count.
      refused++;
      const now = performance.now();
      if (now - refusedLogged >= 1000) {
        logger.error(`UAPI: more than ${limits.maxConnections} connections; refused ${refused}`);
        refused = 0;
        refusedLogged = now;
      }
      sock.on('error', () => sock.destroy());
      sock.end(formatErrno(EBUSY), () => sock.destroy());
      setTimeout(() => sock.destroy(), LINGER_MS).unref();
      return;
    }
    const c = new Connection(sock, shared, () => conns.delete(c));
    conns.add(c);
  });

  // What is at the path now: a live daemon (refuse), or leftovers (remove). Then bind a
  // temporary name and publish it 0600 (src/socket-file.ts).
  const state = await claimSocketPath(socketPath, true);
  if (state === 'live') throw new UapiSocketInUseError(socketPath);
  if (state === 'stale-removed') logger.verbose(`UAPI: removed stale socket ${socketPath}`);
  const bindPath = bindPathFor(socketPath);
  const viaTmp = bindPath !== socketPath;
  try {
    await listenOnce(server, bindPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' && !viaTmp) throw new UapiSocketInUseError(socketPath);
    throw e;
  }
  let ident: string;
  try {
    ident = publishSocket(bindPath, socketPath);
  } catch (e) {
    server.close();
    throw e;
  }
  server.on('error', (e) => logger.error(`UAPI: server error: ${e.message}`));

  let closing: Promise<void> | null = null;
  return {
    path: socketPath,
    stats: () => ({ connections: conns.size, bufferedBytes: shared.budget.total, peakBufferedBytes: shared.budget.peak }),
    close(): Promise<void> {
      if (closing) return closing;
      // Remove the path first (only if it is still our socket), so a successor can bind at once.
      removeIfOurs(socketPath, ident);
      closing = new Promise((resolve) => {
        server.close(() => resolve());
        for (const c of conns) c.destroy();
        conns.clear();
        shared.budget.close();
      });
      return closing;
    },
  };
}
