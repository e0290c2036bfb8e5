/** @module Interface bss:integration/http@1.4.0 **/
export function send(request: Request): Response;
/**
 * # Variants
 * 
 * ## `"get"`
 * 
 * ## `"head"`
 * 
 * ## `"post"`
 * 
 * ## `"put"`
 * 
 * ## `"patch"`
 * 
 * ## `"delete"`
 */
export type Method = 'get' | 'head' | 'post' | 'put' | 'patch' | 'delete';
export interface Request {
  method: Method,
  /**
   * Absolute URL.
   */
  url: string,
  /**
   * Header names and values. `Authorization` and the manifest's credential headers are set by
   * the host; values given here for them are dropped.
   */
  headers: Array<[string, string]>,
  body?: Uint8Array,
}
export interface Response {
  status: number,
  headers: Array<[string, string]>,
  body: Uint8Array,
}
export type HttpError = HttpErrorInvalidRequest | HttpErrorHostNotAllowed | HttpErrorPrivateAddress | HttpErrorRequestLimit | HttpErrorWriteInDryRun | HttpErrorResponseTooLarge | HttpErrorTimeout | HttpErrorTransport;
/**
 * The request could not be sent as given: a URL that does not parse, a bad header (message
 * says which).
 */
export interface HttpErrorInvalidRequest {
  tag: 'invalid-request',
  val: string,
}
/**
 * The scheme, host or port is not among the instance's allowed hosts.
 */
export interface HttpErrorHostNotAllowed {
  tag: 'host-not-allowed',
  val: string,
}
/**
 * The host is, or resolves to, a loopback, private, link-local or unspecified address, and
 * the instance does not allow private networks.
 */
export interface HttpErrorPrivateAddress {
  tag: 'private-address',
  val: string,
}
/**
 * This call has used its request budget (`host.max-requests-per-call`).
 */
export interface HttpErrorRequestLimit {
  tag: 'request-limit',
  val: number,
}
/**
 * A dry run allows only GET and HEAD.
 */
export interface HttpErrorWriteInDryRun {
  tag: 'write-in-dry-run',
}
/**
 * The response body exceeded the cap (bytes); the connection was dropped.
 */
export interface HttpErrorResponseTooLarge {
  tag: 'response-too-large',
  val: bigint,
}
/**
 * Connecting or the whole exchange took too long.
 */
export interface HttpErrorTimeout {
  tag: 'timeout',
  val: string,
}
/**
 * Connection refused, reset, TLS failure, malformed response.
 */
export interface HttpErrorTransport {
  tag: 'transport',
  val: string,
}
