/**
 * The UAPI client's public API, the package entry 'wireguard-ts/uapi': get and set the
 * configuration of a running userspace WireGuard (ours, wireguard-go, boringtun...) over its
 * UNIX socket, and the text protocol both ways (wireguard.com/xplatform). Errnos are positive.
 */

export { type UapiRequestOptions, uapiGet, uapiGetRaw, uapiRequest, uapiSet } from './client.js';
export {
  DEFAULT_SOCKET_DIR,
  EADDRINUSE,
  EINVAL,
  EIO,
  ENOANO,
  EPROTO,
  formatGet,
  formatSet,
  type ParseSetResult,
  parseGetResponse,
  parseSet,
  type UapiDeviceInfo,
  UapiError,
  uapiSocketPath,
} from './protocol.js';
