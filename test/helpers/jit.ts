/**
 * The functions whose optimized code the JIT warm-up must leave in place, as V8's
 * --trace-opt/--trace-deopt output names them; shared by the in-memory guard (test/unit) and
 * the daemon guard (test/system).
 */

/** Functions on the per-packet path (Device, Peer, keypairs, replay, routing, crypto wrappers). */
export const DATA_NAMES =
  'sendPacket|receiveDatagram|receiveTransport|transmit|send|encryptAndTransmit|tick|lookup|ipFamily|innerPacketLength|canSend|canReceive|update|seal|open|counterNonce|dataSent|dataReceived|keepKeyFreshSending|keepKeyFreshReceiving|rxView|txBuffer|txSealView|paddingFor|writeTransportHeader';
/** The same, plus the daemon's glue and the TUN and UDP layers (src/daemon.ts, tun/tun.ts, tun/udp.ts). */
export const DAEMON_NAMES = `${DATA_NAMES}|afterBatch|#?onBatch|flush|#?endpoint|updateEndpoint|sendDatagram|writePacket|write|onTimer|scheduleTick`;
/** A --trace-opt/--trace-deopt line about one of `names` (bailouts and markings name a JSFunction, invalidations a SharedFunctionInfo). */
const about = (names: string) => new RegExp(`<(?:JSFunction|SharedFunctionInfo) (?:${names})[ >]`);
export const DATA_PATH = about(DATA_NAMES);
export const DAEMON_PATH = about(DAEMON_NAMES);
