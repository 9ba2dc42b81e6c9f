/**
 * Protocol constants: message types and sizes (whitepaper §5.4), the Noise construction and
 * labels, and every timer and limit of whitepaper §6 plus the few the kernel adds.
 *
 * All durations are in milliseconds (the engine's `Clock` unit).
 */

const enc = new TextEncoder();

/** Message types (the first byte; the next three bytes are reserved and must be zero). */
export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

/** Wire sizes in bytes. */
export const INITIATION_SIZE = 148;
export const RESPONSE_SIZE = 92;
export const COOKIE_REPLY_SIZE = 64;
export const TRANSPORT_HEADER_SIZE = 16;
/** Header plus the Poly1305 tag of an empty plaintext (a keepalive). */
export const TRANSPORT_MIN_SIZE = 32;
/** Largest UDP payload we accept or produce. */
export const MAX_DATAGRAM_SIZE = 65535;
/** Largest inner packet: the UDP payload minus transport overhead. */
export const MAX_PLAINTEXT_SIZE = MAX_DATAGRAM_SIZE - TRANSPORT_MIN_SIZE;

export const KEY_LEN = 32;
export const HASH_LEN = 32;
export const TAG_LEN = 16;
export const COOKIE_LEN = 16;
export const COOKIE_NONCE_LEN = 24;
export const TIMESTAMP_LEN = 12;
/** Transport plaintexts are zero-padded to a multiple of this. */
export const MESSAGE_PADDING_MULTIPLE = 16;

export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
export const LABEL_MAC1 = 'mac1----';
export const LABEL_COOKIE = 'cookie--';
export const CONSTRUCTION_BYTES = enc.encode(CONSTRUCTION);
export const IDENTIFIER_BYTES = enc.encode(IDENTIFIER);
export const LABEL_MAC1_BYTES = enc.encode(LABEL_MAC1);
export const LABEL_COOKIE_BYTES = enc.encode(LABEL_COOKIE);

/*
 * Message counters are unsigned 64-bit integers on the wire but plain JS numbers here.
 * Numbers are exact only up to 2^53 - 1 (Number.MAX_SAFE_INTEGER), so:
 *  - REKEY_AFTER_MESSAGES (2^60) is exact;
 *  - REJECT_AFTER_MESSAGES (2^64 - 2^13 - 1) is not representable and rounds to 2^64 - 2^13;
 *  - the engine never sends a counter above MAX_COUNTER (at ten million packets per second a
 *    session would need 28 years to get there; REJECT_AFTER_TIME ends it after 3 minutes), and
 *    a received counter above MAX_COUNTER is rejected like one at or above
 *    REJECT_AFTER_MESSAGES. This is stricter than the kernel only for counters no honest peer
 *    can reach within a session's lifetime.
 */
export const REKEY_AFTER_MESSAGES = 2 ** 60;
export const REJECT_AFTER_MESSAGES = 2 ** 64 - 2 ** 13 - 1;
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

export const REKEY_AFTER_TIME = 120_000;
export const REJECT_AFTER_TIME = 180_000;
export const REKEY_ATTEMPT_TIME = 90_000;
export const REKEY_TIMEOUT = 5_000;
/** The kernel adds up to HZ/3 of jitter to REKEY_TIMEOUT-based timers. */
export const REKEY_TIMEOUT_JITTER_MAX = 333;
export const KEEPALIVE_TIMEOUT = 10_000;
export const COOKIE_REFRESH_TIME = 120_000;
/** Keys are zeroed when no new session was derived for this long. */
export const ZERO_KEY_MATERIAL_AFTER = REJECT_AFTER_TIME * 3;
/** Retransmissions of one handshake before giving up (REKEY_ATTEMPT_TIME / REKEY_TIMEOUT). */
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT;

/** The responder's cookie secret rotates this often (COOKIE_SECRET_MAX_AGE in the kernel). */
export const COOKIE_SECRET_MAX_AGE = COOKIE_REFRESH_TIME;
/** An initiator stops using a cookie this long before the responder's secret could rotate. */
export const COOKIE_SECRET_LATENCY = 5_000;

/** At most this many initiations per second are consumed from one peer (flood protection). */
export const INITIATIONS_PER_SECOND = 50;
/** Packets waiting for a session, per peer (the kernel's MAX_STAGED_PACKETS); oldest dropped. */
export const MAX_STAGED_PACKETS = 128;
/** Largest number of peers of a device (as the kernel). */
export const MAX_PEERS = 1 << 20;

/** Per-source handshake rate limit under load (the kernel's ratelimiter.c). */
export const RATELIMIT_PACKETS_PER_SECOND = 20;
export const RATELIMIT_PACKETS_BURST = 5;
/** Ratelimiter entries idle longer than this are forgotten. */
export const RATELIMIT_ENTRY_TTL = 1_000;
/** Most sources the ratelimiter tracks at once; new sources are refused beyond that. */
export const RATELIMIT_MAX_ENTRIES = 65_536;

/**
 * Under-load heuristic of the `'auto'` mode (see docs/ENGINE.md): the device counts handshake
 * messages (initiations and responses of valid length) per second; at this rate or more it is
 * under load, and stays so for UNDER_LOAD_HOLD after the rate drops (the kernel's 1 s).
 */
export const UNDER_LOAD_HANDSHAKES_PER_SECOND = 64;
export const UNDER_LOAD_HOLD = 1_000;
