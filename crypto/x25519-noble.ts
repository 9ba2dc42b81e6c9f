/** X25519 from @noble/curves (pure JavaScript), for the `noble` suite and as the tests' reference. */
import { x25519 } from '@noble/curves/ed25519.js';
import type { X25519Provider } from './x25519.js';

export const nobleX25519: X25519Provider = {
  name: 'noble',
  publicKey: (privateKey) => x25519.getPublicKey(privateKey),
  dh(privateKey, peerPublicKey) {
    try {
      return x25519.getSharedSecret(privateKey, peerPublicKey);
    } catch {
      return null; // noble throws on an all-zero result
    }
  },
};
