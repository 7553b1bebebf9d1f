// Authenticating a delivery. Every comparison goes through crypto.timingSafeEqual on two SHA-256
// sized buffers, so neither the secret's length nor how many leading bytes matched can be read off
// the response time. `crypto` is imported as an object on purpose: tests spy on timingSafeEqual.
import crypto from 'node:crypto';
import type { Verification, WebhookRequest } from './types.js';

type Failure = Extract<Verification, { ok: false }>;

/** One header by its lower-case name; repeats are joined the way Node joins them, so they fail format checks. */
export function header(req: WebhookRequest, name: string): string | undefined {
  let v = req.headers[name];
  if (v === undefined) for (const k of Object.keys(req.headers)) if (k.toLowerCase() === name) v = req.headers[k];
  return Array.isArray(v) ? v.join(', ') : v;
}

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;
// Ids end up in the store and in logs: a conservative alphabet keeps log lines and keys sane.
const DELIVERY_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function fail(status: 401 | 400, reason: string): Failure {
  return { ok: false, status, reason };
}

function noSecret(secret: string): Failure | null {
  // An empty key is still a valid HMAC key, so anyone could sign with it: refuse outright.
  return typeof secret === 'string' && secret.length > 0 ? null : fail(401, 'no webhook secret is configured, so no delivery can be verified');
}

/** The first of `names` that is present, as a delivery id; absent is fine, malformed is not. */
export function deliveryId(req: WebhookRequest, names: string[]): Verification {
  for (const name of names) {
    const id = header(req, name);
    if (id === undefined || id === '') continue;
    return DELIVERY_ID.test(id) ? { ok: true, deliveryId: id } : fail(400, `${name} is not a valid delivery id`);
  }
  return { ok: true, deliveryId: null };
}

/**
 * HMAC-SHA256 of the raw body, hex, optionally behind a prefix ("sha256="). The first header of
 * `signatures` that is present is checked; forges that send several send the same digest in each.
 */
export function verifyHmac(
  req: WebhookRequest,
  secret: string,
  signatures: { name: string; prefix: string }[],
  deliveryHeaders: string[],
): Verification {
  const refused = noSecret(secret);
  if (refused) return refused;
  const found = signatures.find((s) => header(req, s.name) !== undefined);
  if (!found) return fail(401, `missing signature header (${signatures.map((s) => s.name).join(' or ')})`);
  const value = header(req, found.name)!;
  const hex = value.startsWith(found.prefix) ? value.slice(found.prefix.length) : '';
  if (!HEX_SHA256.test(hex)) return fail(401, `${found.name} is malformed: expected ${found.prefix}<64 hex digits>`);
  const expected = crypto.createHmac('sha256', secret).update(req.rawBody).digest();
  if (!crypto.timingSafeEqual(expected, Buffer.from(hex, 'hex'))) return fail(401, `${found.name} does not match the body and the configured secret`);
  return deliveryId(req, deliveryHeaders);
}

/** A shared token sent as-is (GitLab): compare digests of both so the lengths never leak. */
export function verifyToken(req: WebhookRequest, secret: string, name: string, deliveryHeaders: string[]): Verification {
  const refused = noSecret(secret);
  if (refused) return refused;
  const token = header(req, name);
  if (token === undefined || token === '') return fail(401, `missing ${name} header`);
  const digest = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest();
  if (!crypto.timingSafeEqual(digest(token), digest(secret))) return fail(401, `${name} does not match the configured secret`);
  return deliveryId(req, deliveryHeaders);
}
