/**
 * The per-peer timers (noise/timers.ts) driven directly, as tables in the manner of the
 * kernel's self-tests: each row is a script of events at given times, and the actions the
 * deadlines fire (with their times) must be exactly the expected ones. The jitter is fixed,
 * so every deadline is known to the millisecond.
 */
import { describe, expect, it } from 'vitest';
import { KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REKEY_TIMEOUT, ZERO_KEY_MATERIAL_AFTER } from '../../noise/constants.js';
import { type TimerActions, Timers } from '../../noise/timers.js';

const J = 111; // the jitter every armed REKEY_TIMEOUT-based deadline gets here
const K = KEEPALIVE_TIMEOUT;
const R = REKEY_TIMEOUT;
const Z = ZERO_KEY_MATERIAL_AFTER;

type Action = keyof TimerActions;
type Event = 'dataSent' | 'dataReceived' | 'anySent' | 'anyReceived' | 'traversal' | 'initiated' | 'complete' | 'derived' | 'stop';

/** One step: an event at a time, or `run` at a time with the actions it must fire. */
type Step = [number, Event] | [number, 'run', Action[]];

/** `count` retransmissions, one every REKEY_TIMEOUT + jitter after an initiation at `start`. */
function retries(start: number, count: number): Step[] {
  return Array.from({ length: count }, (_, i): Step => [start + (i + 1) * (R + J), 'run', ['retransmitHandshake']]);
}

interface Row {
  name: string;
  /** Persistent keepalive interval in ms (0: off). */
  persistent?: number;
  /** Whether a retransmitHandshake action sends a new initiation (as the peer does). */
  resend?: boolean;
  steps: Step[];
}

const rows: Row[] = [
  {
    name: 'a keepalive KEEPALIVE_TIMEOUT after data arrives',
    steps: [
      [0, 'dataReceived'],
      [K - 1, 'run', []],
      [K, 'run', ['sendKeepalive']],
      [3 * K, 'run', []],
    ],
  },
  {
    name: 'no keepalive when something was sent meanwhile',
    steps: [
      [0, 'dataReceived'],
      [K / 2, 'anySent'],
      [K, 'run', []],
      [2 * K, 'run', []],
    ],
  },
  {
    name: 'data received again while armed: one more keepalive after the first',
    steps: [
      [0, 'dataReceived'],
      [1000, 'dataReceived'],
      [K, 'run', ['sendKeepalive']],
      [2 * K - 1, 'run', []],
      [2 * K, 'run', ['sendKeepalive']],
      [4 * K, 'run', []],
    ],
  },
  {
    name: 'a new handshake KEEPALIVE + REKEY_TIMEOUT + jitter after data sent without an answer',
    steps: [
      [0, 'dataSent'],
      [K + R + J - 1, 'run', []],
      [K + R + J, 'run', ['newHandshake']],
      [10 * K, 'run', []],
    ],
  },
  {
    name: 'sending more data does not push the new-handshake deadline back',
    steps: [
      [0, 'dataSent'],
      [3000, 'dataSent'],
      [K + R + J, 'run', ['newHandshake']],
    ],
  },
  {
    name: 'an answer cancels the new handshake',
    steps: [
      [0, 'dataSent'],
      [1000, 'anyReceived'],
      [K + R + J, 'run', []],
      [10 * K, 'run', []],
    ],
  },
  {
    name: 'an initiation is retransmitted REKEY_TIMEOUT + jitter after it was sent',
    steps: [
      [0, 'initiated'],
      [R + J - 1, 'run', []],
      [R + J, 'run', ['retransmitHandshake']],
      [10 * R, 'run', []],
    ],
  },
  {
    name: 'a completed handshake cancels the retransmission',
    steps: [
      [0, 'initiated'],
      [200, 'complete'],
      [R + J, 'run', []],
    ],
  },
  {
    name: 'after MAX_TIMER_HANDSHAKES + 1 retransmissions (as the kernel counts) it gives up, then zeroes the keys',
    resend: true,
    steps: [
      [0, 'initiated'],
      ...retries(0, MAX_TIMER_HANDSHAKES + 1),
      [(MAX_TIMER_HANDSHAKES + 2) * (R + J), 'run', ['giveUpHandshake']],
      [(MAX_TIMER_HANDSHAKES + 2) * (R + J) + Z - 1, 'run', []],
      [(MAX_TIMER_HANDSHAKES + 2) * (R + J) + Z, 'run', ['zeroKeyMaterial']],
    ],
  },
  {
    name: 'giving up keeps an earlier zero-key deadline and cancels a pending keepalive',
    resend: true,
    steps: [
      [0, 'derived'],
      [1, 'initiated'],
      ...retries(1, MAX_TIMER_HANDSHAKES + 1),
      [(MAX_TIMER_HANDSHAKES + 2) * (R + J), 'dataReceived'],
      [1 + (MAX_TIMER_HANDSHAKES + 2) * (R + J), 'run', ['giveUpHandshake']],
      [1 + (MAX_TIMER_HANDSHAKES + 2) * (R + J) + K, 'run', []],
      [Z - 1, 'run', []],
      [Z, 'run', ['zeroKeyMaterial']],
      [3 * Z, 'run', []],
    ],
  },
  {
    name: 'keys are zeroed 3 * REJECT_AFTER_TIME after the last session was derived',
    steps: [
      [0, 'derived'],
      [Z - 1, 'run', []],
      [Z, 'run', ['zeroKeyMaterial']],
    ],
  },
  {
    name: 'a newer session moves the zero-key deadline',
    steps: [
      [0, 'derived'],
      [1000, 'derived'],
      [Z, 'run', []],
      [Z + 1000, 'run', ['zeroKeyMaterial']],
    ],
  },
  {
    name: 'persistent keepalive: every interval after the last authenticated packet either way',
    persistent: 25_000,
    steps: [
      [0, 'traversal'],
      [24_999, 'run', []],
      [25_000, 'run', ['sendKeepalive']],
      [26_000, 'traversal'],
      [50_999, 'run', []],
      [51_000, 'run', ['sendKeepalive']],
    ],
  },
  {
    name: 'persistent keepalive off: traffic arms nothing',
    persistent: 0,
    steps: [
      [0, 'traversal'],
      [10 * Z, 'run', []],
    ],
  },
  {
    name: 'several deadlines due at once fire in a fixed order',
    persistent: 1000,
    steps: [
      [0, 'derived'],
      [Z - K - R - J, 'dataSent'],
      [Z - K, 'dataReceived'],
      [Z - R - J, 'initiated'],
      [Z - 1000, 'traversal'],
      [Z, 'run', ['retransmitHandshake', 'sendKeepalive', 'newHandshake', 'zeroKeyMaterial', 'sendKeepalive']],
    ],
  },
  {
    name: 'stop() disarms everything, and nothing arms afterwards',
    persistent: 1000,
    steps: [
      [0, 'derived'],
      [0, 'initiated'],
      [0, 'dataReceived'],
      [0, 'dataSent'],
      [0, 'traversal'],
      [1, 'stop'],
      [2, 'derived'],
      [2, 'initiated'],
      [2, 'dataReceived'],
      [2, 'dataSent'],
      [2, 'traversal'],
      [10 * Z, 'run', []],
    ],
  },
];

/** The Timers method of each event. */
const EVENTS: Record<Event, (t: Timers, now: number) => void> = {
  dataSent: (t, now) => t.dataSent(now),
  dataReceived: (t, now) => t.dataReceived(now),
  anySent: (t) => t.anyAuthenticatedPacketSent(),
  anyReceived: (t) => t.anyAuthenticatedPacketReceived(),
  traversal: (t, now) => t.anyAuthenticatedPacketTraversal(now),
  initiated: (t, now) => t.handshakeInitiated(now),
  complete: (t) => t.handshakeComplete(),
  derived: (t, now) => t.sessionDerived(now),
  stop: (t) => t.stop(),
};
const apply = (t: Timers, ev: Event, now: number): void => EVENTS[ev](t, now);

/** Timers and a recorder of the actions they fire (a retransmission re-arms when `resend`). */
function harness(row: Row) {
  const t = new Timers(() => J);
  t.persistentKeepaliveInterval = row.persistent ?? 0;
  const fired: Action[] = [];
  let now = 0;
  const actions: TimerActions = {
    retransmitHandshake: () => {
      fired.push('retransmitHandshake');
      if (row.resend) t.handshakeInitiated(now);
    },
    giveUpHandshake: () => fired.push('giveUpHandshake'),
    sendKeepalive: () => fired.push('sendKeepalive'),
    newHandshake: () => fired.push('newHandshake'),
    zeroKeyMaterial: () => fired.push('zeroKeyMaterial'),
  };
  return {
    t,
    step(s: Step): Action[] {
      now = s[0];
      if (s[1] !== 'run') {
        apply(t, s[1], now);
        return [];
      }
      fired.length = 0;
      t.run(now, actions);
      return fired.slice();
    },
  };
}

describe('timers: scripted events and the actions they fire', () => {
  for (const row of rows) {
    it(row.name, () => {
      const h = harness(row);
      for (const s of row.steps) {
        const got = h.step(s);
        if (s[1] === 'run') expect(got, `run at ${s[0]} ms`).toEqual(s[2]);
      }
    });
  }
});

describe('timers: the next deadline', () => {
  const cases: Array<{ events: Array<[number, Event]>; next: number }> = [
    { events: [], next: Infinity },
    { events: [[0, 'dataReceived']], next: K },
    { events: [[0, 'dataSent']], next: K + R + J },
    { events: [[0, 'initiated']], next: R + J },
    { events: [[0, 'derived']], next: Z },
    {
      events: [
        [0, 'derived'],
        [5, 'initiated'],
        [7, 'dataReceived'],
      ],
      next: 5 + R + J,
    },
    { events: [[0, 'traversal']], next: 2000 },
    {
      events: [
        [0, 'dataReceived'],
        [1, 'stop'],
      ],
      next: Infinity,
    },
  ];
  for (const c of cases) {
    it(`${c.events.map(([t, e]) => `${e}@${t}`).join(', ') || 'nothing'} -> ${c.next}`, () => {
      const t = new Timers(() => J);
      t.persistentKeepaliveInterval = 2000;
      for (const [now, e] of c.events) apply(t, e, now);
      expect(t.next).toBe(c.next);
    });
  }
});

describe('timers: handshake attempts', () => {
  it('counts retries, and a completed handshake resets the count and the last-minute flag', () => {
    const t = new Timers(() => J);
    const noop = (): void => {};
    const a: TimerActions = { retransmitHandshake: noop, giveUpHandshake: noop, sendKeepalive: noop, newHandshake: noop, zeroKeyMaterial: noop };
    t.handshakeInitiated(0);
    for (const [at, attempts] of [
      [R + J, 1],
      [2 * (R + J), 2],
      [3 * (R + J), 3],
    ] as const) {
      t.run(at, a);
      t.handshakeInitiated(at);
      expect(t.handshakeAttempts).toBe(attempts);
    }
    t.sentLastMinuteHandshake = true;
    t.handshakeComplete();
    expect([t.handshakeAttempts, t.sentLastMinuteHandshake, t.retransmitHandshake]).toEqual([0, false, Infinity]);
  });
});
