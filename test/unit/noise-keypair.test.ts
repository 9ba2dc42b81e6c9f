/**
 * Keypair rotation (noise/keypair.ts) as tables, in the manner of the kernel's self-tests:
 * a script of keypairs installed and confirmed, and after each step the exact
 * previous/current/next slots and which keypairs were released (zeroed, index freed). Then the
 * send/receive limits of one keypair at and around each boundary.
 */
import { describe, expect, it } from 'vitest';
import { REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME } from '../../noise/constants.js';
import { Keypair, Keypairs } from '../../noise/keypair.js';

/** A keypair named by its role and number ("I1": initiator, "R1": responder); keys filled with its index. */
function kp(name: string, birth = 0): Keypair {
  const index = Number(name.slice(1)) + (name[0] === 'I' ? 100 : 200);
  const k = new Keypair(
    {
      sendKey: new Uint8Array(32).fill(index & 0xff),
      recvKey: new Uint8Array(32).fill(~index & 0xff),
      isInitiator: name[0] === 'I',
      localIndex: index,
      remoteIndex: index + 1000,
    },
    birth,
  );
  names.set(k, name);
  return k;
}
const names = new Map<Keypair, string>();
const nameOf = (k: Keypair | null): string => (k === null ? '-' : names.get(k)!);

type Op = ['add', string] | ['received', string, boolean] | ['expireSending'] | ['clear'];

interface Row {
  op: Op;
  /** previous, current, next after the step. */
  slots: [string, string, string];
  /** Keypairs released by this step, in order. */
  released: string[];
  /** The keypairs in the slots that may still send (default: all of them). */
  sending?: string[];
}

// One long script through every transition of add/receivedWith, as a table of expected states.
const script: Row[] = [
  { op: ['add', 'I1'], slots: ['-', 'I1', '-'], released: [] },
  { op: ['add', 'I2'], slots: ['I1', 'I2', '-'], released: [] },
  { op: ['add', 'I3'], slots: ['I2', 'I3', '-'], released: ['I1'] },
  // A responder's keypair waits in next; the previous one goes (it would be two sessions back).
  { op: ['add', 'R1'], slots: ['-', 'I3', 'R1'], released: ['I2'] },
  { op: ['received', 'I3', false], slots: ['-', 'I3', 'R1'], released: [] },
  // The initiator's first message under R1 confirms it.
  { op: ['received', 'R1', true], slots: ['I3', 'R1', '-'], released: [] },
  { op: ['received', 'R1', false], slots: ['I3', 'R1', '-'], released: [] },
  { op: ['add', 'R2'], slots: ['-', 'R1', 'R2'], released: ['I3'] },
  // A newer responder keypair replaces an unconfirmed one.
  { op: ['add', 'R3'], slots: ['-', 'R1', 'R3'], released: ['R2'] },
  // An initiator's keypair while one is unconfirmed: that one becomes previous, current goes.
  { op: ['add', 'I4'], slots: ['R3', 'I4', '-'], released: ['R1'] },
  { op: ['received', 'R3', false], slots: ['R3', 'I4', '-'], released: [] },
  { op: ['add', 'R4'], slots: ['-', 'I4', 'R4'], released: ['R3'] },
  { op: ['expireSending'], slots: ['-', 'I4', 'R4'], released: [], sending: [] },
  { op: ['clear'], slots: ['-', '-', '-'], released: ['I4', 'R4'] },
  { op: ['add', 'R5'], slots: ['-', '-', 'R5'], released: [] },
  { op: ['received', 'R5', true], slots: ['-', 'R5', '-'], released: [] },
];

describe('keypair rotation: a script of installs and confirmations', () => {
  it('keeps the slots and releases exactly as the table says', () => {
    const released: Keypair[] = [];
    const kps = new Keypairs((k) => released.push(k));
    const made = new Map<string, Keypair>();
    for (const [i, row] of script.entries()) {
      const at = `step ${i}: ${row.op.join(' ')}`;
      released.length = 0;
      const [op, name, want] = row.op;
      if (op === 'add') {
        const k = kp(name!);
        made.set(name!, k);
        kps.add(k);
      } else if (op === 'received') {
        expect(kps.receivedWith(made.get(name!)!), at).toBe(want);
      } else if (op === 'expireSending') {
        kps.expireSending();
      } else {
        kps.clear();
      }
      expect([nameOf(kps.previous), nameOf(kps.current), nameOf(kps.next)], at).toEqual(row.slots);
      expect(released.map(nameOf), at).toEqual(row.released);
      expect(kps.any, at).toBe(row.slots.some((s) => s !== '-'));
      for (const r of released) {
        expect([r.sendValid, r.recvValid], at).toEqual([false, false]);
        expect(r.sendKey.every((b) => b === 0) && r.recvKey.every((b) => b === 0), at).toBe(true);
      }
      const filled = row.slots.filter((s) => s !== '-');
      for (const s of filled) expect(made.get(s)!.recvValid, `${at}: ${s} still receives`).toBe(true);
      expect(
        filled.filter((s) => made.get(s)!.sendValid),
        at,
      ).toEqual(row.sending ?? filled);
    }
  });

  it('an initiator keypair arriving with all three slots full releases previous and current', () => {
    const released: Keypair[] = [];
    const kps = new Keypairs((k) => released.push(k));
    [kps.previous, kps.current, kps.next] = [kp('R7'), kp('I7'), kp('R8')];
    kps.add(kp('I8'));
    expect([nameOf(kps.previous), nameOf(kps.current), nameOf(kps.next)]).toEqual(['R8', 'I8', '-']);
    expect(released.map(nameOf)).toEqual(['R7', 'I7']);
  });
});

describe('keypair limits: canSend / canReceive at the boundaries', () => {
  const T = REJECT_AFTER_TIME;
  // REJECT_AFTER_MESSAGES rounds to 2^64 - 2^13 as a double; doubles there are 2^11 apart, so
  // the largest counter below it is 2^64 - 2^13 - 2^11.
  const BELOW = REJECT_AFTER_MESSAGES - 2048;
  const cases: Array<{ age: number; sent?: number; seen?: number; sendValid?: boolean; recvValid?: boolean; send: boolean; receive: boolean }> = [
    { age: 0, send: true, receive: true },
    { age: T - 1, send: true, receive: true },
    { age: T, send: false, receive: false },
    { age: T + 1, send: false, receive: false },
    { age: 0, sent: BELOW, send: true, receive: true },
    { age: 0, sent: REJECT_AFTER_MESSAGES, send: false, receive: true },
    { age: 0, seen: 2 ** 20, send: true, receive: true },
    { age: 0, sendValid: false, send: false, receive: true },
    { age: 0, recvValid: false, send: true, receive: false },
  ];
  for (const c of cases) {
    it(JSON.stringify(c), () => {
      const k = kp('I9', 1000);
      if (c.sent !== undefined) k.sendCounter = c.sent;
      if (c.seen !== undefined) expect(k.replay.update(c.seen - 1)).toBe(true);
      if (c.sendValid !== undefined) k.sendValid = c.sendValid;
      if (c.recvValid !== undefined) k.recvValid = c.recvValid;
      expect(k.canSend(1000 + c.age)).toBe(c.send);
      expect(k.canReceive(1000 + c.age)).toBe(c.receive);
    });
  }

  it('zero() wipes both keys and stops both directions', () => {
    const k = kp('R9');
    k.zero();
    expect([k.canSend(0), k.canReceive(0)]).toEqual([false, false]);
    expect([...k.sendKey, ...k.recvKey].every((b) => b === 0)).toBe(true);
  });
});
