/**
 * The package entry 'wireguard-ts/openssl': the CryptoSuite of the native addon (the OpenSSL
 * inside Node.js, tun/openssl.ts), or null when the addon is not built (an install without a
 * C compiler). Pass it as `new Device({ crypto: opensslSuite() ?? jsSuite, ... })`.
 */

export type { CryptoSuite } from '../crypto/suite.js';
export { opensslSuite } from './openssl.js';
