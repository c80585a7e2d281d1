/**
 * Whether a request that failed may still have been acted on by the provider (its outcome unknown:
 * the dispatcher then reconciles before sending again, src/core/notify/dispatcher.ts). One rule for
 * every channel: an answer of 408, 429 or 503 says the request was not processed (the server was busy
 * or unavailable); any other 5xx may come after the server acted; a socket error that means no
 * connection was made (or it was refused before anything was written) proves nothing was sent; any
 * other error without an answer (timeout, reset, hang-up) may have come after the server read it.
 */

/** Socket and TLS error codes that mean the request never reached a server. */
export const NEVER_CONNECTED: ReadonlySet<string> = new Set([
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  'ECANDORPRIVATE',
  'ECONNREFUSED',
  'EHOSTDOWN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'ERR_INVALID_URL',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** An HTTP answer asking for a retry: a 5xx may come after the server acted, except 503; 408 and 429 say it did not. */
export const answerMayHaveSent = (status: number): boolean => status >= 500 && status !== 503;

/** A failure without an HTTP answer: may have been sent unless its error code proves no connection was made. */
export const errorMayHaveSent = (code: string | null | undefined): boolean => !NEVER_CONNECTED.has(code ?? '');
