import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type Logger, silentLogger } from '../../noise/types.js';
import { bindPathFor, claimSocketPath, publishSocket, removeIfOurs, withPrivateUmask } from '../socket-file.js';
import { formatMetricsAddress, type MetricsAddress } from './address.js';
import { CONTENT_TYPE, Exposition } from './exposition.js';
import { addProcessMetrics } from './process.js';

export const METRICS_PATH = '/metrics';

export const OUTCOMES = ['served', 'not_found', 'method_not_allowed', 'bad_request', 'too_large', 'timeout', 'connection_limit', 'error'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface MetricsServerOptions {
  /** Connections at once (default 8; Prometheus needs one). */
  maxConnections?: number;
  /** Bytes of request line and headers (default 8 KiB). */
  maxHeaderBytes?: number;
  /** A connection's whole life in ms (default 10 s). */
  deadlineMs?: number;
}

export interface MetricsServer {
  /** Where it listens, as written (`127.0.0.1:9586`, `[::1]:9586`, a socket path). */
  readonly address: string;
  /** The TCP port (for a UNIX socket: 0). */
  readonly port: number;
  readonly outcomes: Readonly<Record<Outcome, number>>;
  /** Connections open now. */
  readonly connections: number;
  /** Stop listening, drop the connections, remove the socket file (if it is still ours). */
  close(): Promise<void>;
}

/**
 * Adds the program's metrics (its devices) to a scrape. It may resolve later, to do a large
 * collection in slices that leave the event loop (and so the data path) free in between.
 */
export type Collector = (x: Exposition) => void | Promise<void>;

/**
 * Requests this close together share one rendering (and one buffer, however many connections
 * wait): well below any scrape interval, so one Prometheus never gets the same answer twice.
 */
const SHARE_MS = 250;

/** Clear the way for a UNIX socket at `path`, or throw saying why not. */
async function prepareSocketPath(path: string): Promise<void> {
  const state = await claimSocketPath(path);
  if (state === 'not-a-socket') throw new Error(`metrics socket ${path}: something else than a socket is there; refusing to replace it`);
  if (state === 'live') throw new Error(`metrics socket ${path} is in use by another process`);
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 431: 'Request Header Fields Too Large' };

export async function serveMetrics(
  addr: MetricsAddress,
  collect: Collector,
  logger: Logger = silentLogger,
  options: MetricsServerOptions = {},
): Promise<MetricsServer> {
  const maxConnections = options.maxConnections ?? 8;
  const deadlineMs = options.deadlineMs ?? 10_000;
  const where = formatMetricsAddress(addr);
  const outcomes = {} as Record<Outcome, number>;
  for (const o of OUTCOMES) outcomes[o] = 0;
  const sockets = new Set<Socket>();
  /** Sockets whose one request has been answered (or refused). */
  const answered = new WeakSet<Socket>();
  /** Sockets closed for taking too long: Node's header timeout or our deadline, whichever came first. */
  const timedOut = new WeakSet<Socket>();
  const timeout = (sock: Socket): void => {
    if (!timedOut.has(sock)) outcomes.timeout++;
    timedOut.add(sock);
  };

  const refuse = (res: ServerResponse, status: number, outcome: Outcome, extra: Record<string, string> = {}): void => {
    outcomes[outcome]++;
    const body = `${STATUS_TEXT[status]}\n`;
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(body.length), Connection: 'close', ...extra });
    res.end(body);
  };

  const render = async (): Promise<Buffer> => {
    const x = new Exposition();
    await collect(x);
    addProcessMetrics(x);
    const f = x.family('wireguard_ts_metrics_requests_total', 'counter', 'Requests to this metrics endpoint, by outcome (every refusal counted).');
    for (const o of OUTCOMES) f.add({ outcome: o }, outcomes[o]);
    x.family('wireguard_ts_metrics_connections', 'gauge', 'Connections to this metrics endpoint open now.').add({}, sockets.size);
    return Buffer.from(x.text());
  };
  // The last rendering: requests get it while it is under way and for SHARE_MS after its start.
  let shared: { at: number; pending: boolean; body: Promise<Buffer> } | null = null;
  const body = (): Promise<Buffer> => {
    const now = performance.now();
    if (shared !== null && (shared.pending || now - shared.at < SHARE_MS)) return shared.body;
    const mine = { at: now, pending: true, body: render() };
    shared = mine;
    mine.body.then(
      () => {
        mine.pending = false;
      },
      () => {
        mine.pending = false;
        if (shared === mine) shared = null; // a failure is not shared with later requests
      },
    );
    return mine.body;
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const sock = req.socket;
    if (answered.has(sock)) {
      // A pipelined second request: the first answer closes the connection; this one gets none.
      outcomes.bad_request++;
      return;
    }
    answered.add(sock);
    const path = (req.url ?? '').split('?')[0];
    const length = req.headers['content-length'];
    if (req.method !== 'GET') refuse(res, 405, 'method_not_allowed', { Allow: 'GET' });
    else if (path !== METRICS_PATH) refuse(res, 404, 'not_found');
    else if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) refuse(res, 400, 'bad_request');
    else answer(res);
  };

  const answer = (res: ServerResponse): void => {
    body().then(
      (b) => {
        if (res.destroyed) return; // closed at the deadline meanwhile
        outcomes.served++;
        res.writeHead(200, { 'Content-Type': CONTENT_TYPE, 'Content-Length': String(b.length), Connection: 'close' });
        res.end(b);
      },
      (e: unknown) => {
        // A bug in a collector: this scrape fails, the program goes on.
        outcomes.error++;
        logger.error(`metrics: ${e instanceof Error ? e.message : String(e)}`);
        if (res.destroyed) return;
        res.writeHead(500, { Connection: 'close', 'Content-Length': '0' });
        res.end();
      },
    );
  };

  const server = createServer(
    {
      maxHeaderSize: options.maxHeaderBytes ?? 8192,
      headersTimeout: Math.min(5000, deadlineMs),
      requestTimeout: deadlineMs,
      keepAliveTimeout: 1,
      connectionsCheckingInterval: 1000,
    },
    onRequest,
  );
  server.maxConnections = maxConnections;
  server.on('drop', () => {
    outcomes.connection_limit++;
  });
  server.on('connection', (sock: Socket) => {
    sockets.add(sock);
    const t = setTimeout(() => {
      if (!sock.destroyed) {
        timeout(sock);
        logger.verbose(`metrics: a connection outlived ${deadlineMs} ms; closed`);
        sock.destroy();
      }
    }, deadlineMs);
    t.unref();
    sock.on('close', () => {
      clearTimeout(t);
      sockets.delete(sock);
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, sock: Socket) => {
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') timeout(sock);
    else if (err.code !== 'ECONNRESET') outcomes[tooLarge ? 'too_large' : 'bad_request']++;
    if (sock.writable && !answered.has(sock)) {
      const status = tooLarge ? 431 : 400;
      sock.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    sock.destroy();
  });

  let bindPath = '';
  if (addr.kind === 'unix') {
    await prepareSocketPath(addr.path);
    bindPath = bindPathFor(addr.path);
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(new Error(e.code === 'EADDRINUSE' ? `metrics address ${where} is already in use` : `cannot listen on metrics address ${where}: ${e.message}`));
    };
    server.once('error', onError);
    const ready = () => {
      server.off('error', onError);
      resolve();
    };
    if (addr.kind === 'tcp') {
      server.listen({ host: addr.host, port: addr.port, ipv6Only: addr.family === 6, exclusive: true }, ready);
      return;
    }
    // Bound under a temporary name with umask 077, made 0600 and renamed into place (below):
    // clients never see other permissions, and libuv's unlink on close hits the temporary
    // name, never a socket that a successor has put at the path meanwhile.
    withPrivateUmask(() => server.listen({ path: bindPath }, ready));
  });
  let ident: string | null = null;
  if (addr.kind === 'unix') {
    try {
      ident = publishSocket(bindPath, addr.path);
    } catch (e) {
      server.close();
      throw new Error(`metrics socket ${addr.path}: ${(e as Error).message}`);
    }
  }
  server.on('error', (e) => logger.error(`metrics: ${e.message}`));
  const bound = server.address();
  const port = bound !== null && typeof bound === 'object' ? bound.port : 0;
  const address = addr.kind === 'tcp' ? formatMetricsAddress({ ...addr, port }) : where;
  logger.verbose(`metrics served on ${address}${METRICS_PATH}`);

  let closing: Promise<void> | null = null;
  return {
    address,
    port,
    outcomes,
    get connections() {
      return sockets.size;
    },
    close(): Promise<void> {
      if (closing) return closing;
      if (addr.kind === 'unix') removeIfOurs(addr.path, ident);
      closing = new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        sockets.clear();
      });
      return closing;
    },
  };
}
