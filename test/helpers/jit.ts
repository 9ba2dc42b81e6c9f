/**
 * The functions whose optimized code the JIT warm-up must leave in place, by the compiled file
 * that defines them and the name V8's --trace-opt/--trace-deopt/--trace-turbo-inlining output
 * gives them; shared by the in-memory guard (test/unit) and the daemon guard (test/system).
 * A rename must break the guards, not silence them: test/unit/warmup-jit.test.ts checks that
 * every name is still defined in its file and still appears in V8's output during a warm-up.
 */

export interface Watched {
  /** The compiled module, relative to dist/. */
  readonly file: string;
  /** The function's name as V8 prints it (`#onBatch` for a private field's function). */
  readonly name: string;
}

const w = (file: string, ...names: string[]): Watched[] => names.map((name) => ({ file, name }));

/** Functions on the engine's per-packet path (Device, Peer, keypairs, replay, routing, crypto). */
export const DATA_WATCHED: readonly Watched[] = [
  ...w('noise/device.js', 'sendPacket', 'receiveDatagram', 'receiveTransport', 'transmit', 'tick'),
  ...w('noise/peer.js', 'send', 'encryptAndTransmit', 'keepKeyFreshSending', 'keepKeyFreshReceiving', 'transportReceived', 'updateEndpoint'),
  ...w('noise/allowedips.js', 'lookup'),
  ...w('noise/ippacket.js', 'ipFamily', 'innerPacketLength'),
  ...w('noise/keypair.js', 'canSend', 'canReceive'),
  ...w('noise/replay.js', 'check', 'update'),
  ...w('noise/timers.js', 'dataSent', 'dataReceived'),
  ...w('noise/scratch.js', 'rxView', 'txBuffer', 'txSealView'),
  ...w('noise/messages.js', 'paddingFor', 'writeTransportHeader'),
  ...w('crypto/aead.js', 'counterNonce'),
  ...w('tun/openssl.js', 'seal', 'open'),
];

/** The same, plus the daemon's glue and the TUN and UDP layers. */
export const DAEMON_WATCHED: readonly Watched[] = [
  ...DATA_WATCHED,
  ...w('src/device-host.js', 'afterInput', 'afterBatch', 'flush', 'sendDatagram'),
  ...w('src/keep-warm.js', 'touch'),
  ...w('tun/tun.js', '#onBatch', 'queue'),
  ...w('tun/udp.js', '#onBatch', '#endpoint'),
];

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\#]/g, '\\$&');
const names = (ws: readonly Watched[]): string => [...new Set(ws.map((x) => escapeRe(x.name)))].join('|');

/** A --trace-opt/--trace-deopt line about one of the functions (bailouts and markings name a JSFunction, invalidations a SharedFunctionInfo). */
const about = (ws: readonly Watched[]) => new RegExp(`<(?:JSFunction|SharedFunctionInfo) (?:${names(ws)})[ >]`);
export const DATA_PATH = about(DATA_WATCHED);
export const DAEMON_PATH = about(DAEMON_WATCHED);

/** The watched names that V8's output `trace` never mentions (compiled, or inlined into what was). */
export function missingFrom(trace: string, ws: readonly Watched[]): string[] {
  return [...new Set(ws.map((x) => x.name))].filter((n) => !new RegExp(`<(?:JSFunction|SharedFunctionInfo) ${escapeRe(n)}[ >]`).test(trace));
}

/** Whether `source` (a compiled module's text) still defines a function or method `name`. */
export function defines(source: string, name: string): boolean {
  return new RegExp(`(?:^|[^\\w$#])${escapeRe(name)}\\s*(?:\\(|=\\s*(?:\\(|function|async)|:\\s*(?:\\(|function))`, 'm').test(source);
}
