/**
 * The shape of the test-vector file (test/vectors/wireguard.json), documented field by field
 * in docs/VECTORS.md, and its one serialization. Byte strings are lowercase hex; sender and
 * receiver indices are JSON numbers (u32); message counters are decimal strings, because
 * JSON numbers are not exact above 2^53.
 */

import { encodeHexKey } from '../../crypto/keys.js';

/** Lowercase hexadecimal, two digits per byte ("" for no bytes). */
export type Hex = string;

/** Lowercase hex of `b`, two digits per byte: the same text as a key's hex form. */
export const toHex: (b: Uint8Array) => Hex = encodeHexKey;

export function fromHex(s: Hex): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/.test(s)) throw new Error(`not lowercase hex: ${s.slice(0, 40)}`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/**
 * One line of the whitepaper's computation: `expr` as the whitepaper writes it (with the
 * naming conventions of docs/VECTORS.md), `values` the value of every name it assigns.
 */
export interface Line {
  expr: string;
  values: Record<string, Hex>;
}

/** A handshake message or cookie reply: how it is computed, its wire fields, its bytes. */
export interface MessageVector {
  lines: Line[];
  /** The wire fields in order; their concatenation is `bytes`. */
  fields: Record<string, Hex>;
  bytes: Hex;
}

export interface TimeInput {
  unixMilliseconds: number;
  utc: string;
}

export interface HandshakeInputs {
  'S_i^priv': Hex;
  'S_i^pub': Hex;
  'S_r^priv': Hex;
  'S_r^pub': Hex;
  'E_i^priv': Hex;
  'E_i^pub': Hex;
  'E_r^priv': Hex;
  'E_r^pub': Hex;
  /** The preshared key; 32 zero bytes when there is none, as the protocol specifies. */
  Q: Hex;
  /** Sender index of the initiator (the initiation's sender field). */
  I_i: number;
  /** Sender index of the responder (the response's sender field). */
  I_r: number;
  /** The initiator's wall clock when it made the initiation. */
  time: TimeInput;
}

export type Party = 'initiator' | 'responder';

export interface TransportVector {
  description: string;
  from: Party;
  /** Which transport key seals it: T_i^send from the initiator, T_r^send from the responder. */
  key: 'T_i^send' | 'T_r^send';
  receiver: number;
  /** The message counter N (decimal). */
  counter: string;
  /** The inner IP packet; empty for a keepalive. */
  packet: Hex;
  /** Zero bytes appended to the packet before sealing. */
  padding: number;
  fields: Record<string, Hex>;
  bytes: Hex;
}

/** The cookie round of a handshake made under load: the first initiation and its cookie reply. */
export interface CookieVector {
  inputs: {
    /** The responder's cookie secret. */
    R_m: Hex;
    /** The initiation's source, as the responder saw it. */
    source: { address: string; port: number };
    /** A_m: the source IP address bytes followed by the UDP port, big endian. */
    A_m: Hex;
    'msg.nonce': Hex;
    /** The first initiation (answered with the cookie reply): its own ephemeral, index and time. */
    'E_i^priv': Hex;
    'E_i^pub': Hex;
    I_i: number;
    time: TimeInput;
  };
  initiation: MessageVector;
  reply: MessageVector;
}

export interface HandshakeVector {
  name: string;
  description: string;
  inputs: HandshakeInputs;
  /** Only under load: the round that gave the initiator the cookie its initiation's mac2 uses. */
  cookie?: CookieVector;
  initiation: MessageVector;
  response: MessageVector;
  /** The transport keys (whitepaper §5.4.5). */
  session: { lines: Line[] };
  transport: TransportVector[];
}

export type Outcome = 'accept' | 'reject';

export interface CounterStep {
  counter: string;
  bytes: Hex;
  /**
   * What the whitepaper's rules require of any receiver; 'window-dependent' where the answer
   * depends on the size of the replay window, which the whitepaper leaves to implementations.
   */
  expect: Outcome | 'window-dependent';
  /** What this engine does (checked by the tests against the engine itself). */
  engine: Outcome;
  note?: string;
}

export interface CounterSequence {
  name: string;
  description: string;
  /** The handshake vector whose session carries the messages. */
  handshake: string;
  from: Party;
  key: 'T_i^send' | 'T_r^send';
  receiver: number;
  /** Messages delivered in order to the receiving side of a session that has received none yet. */
  steps: CounterStep[];
}

export interface VectorFile {
  about: string;
  format: string;
  version: 1;
  constants: Record<string, string>;
  handshakes: HandshakeVector[];
  counters: CounterSequence[];
}

/** The file's bytes: two-space JSON and a final newline (what `npm run vectors` writes). */
export function serializeVectors(doc: VectorFile): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
