/**
 * Why the engine dropped an input (a datagram from the network, a packet from the TUN side)
 * or a packet it held. Every drop is counted under exactly one reason.
 */
export const DROP_REASONS = [
  // Datagrams that are not well-formed messages.
  'invalid-length', // too short/long for its type (handshake messages have exact sizes)
  'invalid-type', // unknown message type
  'invalid-reserved', // the three reserved header bytes are not zero
  // Handshake messages.
  'no-private-key', // a handshake message, but the device has no private key
  'invalid-mac1', // mac1 does not match our public key
  'cookie-sent', // under load without a valid mac2: answered with a cookie reply instead
  'ratelimited', // under load, valid mac2, but the source exceeded its handshake rate
  'cookie-ratelimited', // under load without a valid mac2, and the source had its share of cookie replies
  'handshake-queue-full', // under load, admitted, but its source's (or the) handshake queue was full
  'invalid-initiation', // does not decrypt, or a low-order key (all-zero DH)
  'unknown-peer', // the initiator's static key is not one of our peers
  'stale-timestamp', // TAI64N not newer than the last accepted from that peer (replay)
  'initiation-flood', // more than INITIATIONS_PER_SECOND from one peer
  'invalid-response', // does not decrypt, wrong state or low-order ephemeral
  'invalid-cookie-reply', // does not decrypt under our last mac1, or no mac1 outstanding
  // Transport messages.
  'unknown-index', // no handshake/keypair has that receiver index
  'expired-keypair', // the keypair is too old (REJECT_AFTER_TIME) or invalidated
  'replayed-counter', // counter seen before, behind the window, or past the limits
  'invalid-tag', // authentication failed
  'invalid-inner-packet', // decrypted packet is not a well-formed IPv4/IPv6 packet
  'disallowed-source', // inner source address is not in the sending peer's allowed IPs
  // Packets from the TUN side.
  'invalid-outbound-packet', // not an IPv4/IPv6 packet, or too large to encapsulate
  'no-route', // no peer's allowed IPs contain the destination
  'no-endpoint', // the peer has no endpoint yet
  'routing-loop', // one of our own datagrams (or a fragment of one) came back: its route leads into us
  // Packets that were waiting for a session.
  'staged-overflow', // MAX_STAGED_PACKETS were waiting; the oldest was dropped
  'handshake-gave-up', // no session after REKEY_ATTEMPT_TIME (or keys zeroed, peer removed)
  // Anything after close() (or queued when it came); sinks that threw; a bug caught at the API
  // boundary (never expected).
  'closed',
  'sink-error',
  'internal-error',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

export function emptyDrops(): Record<DropReason, number> {
  const d = {} as Record<DropReason, number>;
  for (const r of DROP_REASONS) d[r] = 0;
  return d;
}
