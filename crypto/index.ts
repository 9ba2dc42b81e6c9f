export * from './blake2s.js';
export * from './x25519.js';
export * from './aead.js';
export * from './tai64n.js';
export * from './keys.js';
export * from './random.js';
