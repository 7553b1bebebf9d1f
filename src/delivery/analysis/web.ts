// The `web` analysis source, and blue-green's smoke checks: one HTTP request, measured. Values:
// status (the HTTP status), duration_ms (until the body is read), status_ok (1 when the status
// is one of expectStatus, or 2xx when none is given, else 0) and body_matches (1 or 0, only when
// expectBody is given: an re2 pattern searched in the first MiB of the body). A URL that is a
// path (/healthz) is resolved against the new version's address. No answer (refused, timed out)
// is inconclusive, with duration_ms still measured.
import { RE2JS } from 're2js';
import type { WebCheckSpec } from '../../config/types.js';
import { fetchErrorMessage, measureSignal, type MeasureContext, type Measurement } from './types.js';

const MAX_BODY = 1 << 20;
const patterns = new Map<string, RE2JS | Error>();

function bodyPattern(p: string): RE2JS | Error {
  let re = patterns.get(p);
  if (!re) {
    try {
      re = RE2JS.compile(p);
    } catch (err) {
      re = new Error(`bad expect_body pattern /${p}/: ${(err as Error).message}`);
    }
    if (patterns.size > 200) patterns.clear();
    patterns.set(p, re);
  }
  return re;
}

/** The absolute URL of a check, or why there is none. */
export function resolveCheckUrl(url: string, newVersionUrl: string | undefined): URL | Error {
  try {
    let u: URL;
    if (/^[a-z][a-z0-9+.-]*:/i.test(url)) u = new URL(url);
    else if (!newVersionUrl) return new Error(`\`${url}\` is a path, and there is no address of the new version to resolve it against`);
    else u = new URL(url, newVersionUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return new Error(`\`${url}\`: only http and https URLs can be checked`);
    return u;
  } catch (err) {
    return new Error(`bad URL \`${url}\`: ${(err as Error).message}`);
  }
}

export async function measureWeb(spec: WebCheckSpec, ctx: Partial<MeasureContext> = {}): Promise<Measurement> {
  const url = resolveCheckUrl(spec.url, ctx.newVersionUrl);
  if (url instanceof Error) return { values: {}, error: url.message };
  const re = spec.expectBody !== undefined ? bodyPattern(spec.expectBody) : null;
  if (re instanceof Error) return { values: {}, error: re.message };
  const timeoutMs = spec.timeoutMs > 0 ? spec.timeoutMs : 10_000;
  const started = performance.now();
  const ms = () => Math.round((performance.now() - started) * 100) / 100;
  try {
    const res = await fetch(url, { method: spec.method || 'GET', signal: measureSignal(ctx, timeoutMs), redirect: 'follow' });
    const body = re ? await readPrefix(res, MAX_BODY) : await drain(res);
    const values: Measurement['values'] = {
      status: res.status,
      duration_ms: ms(),
      status_ok: statusOk(spec, res.status) ? 1 : 0,
    };
    if (re) values.body_matches = re.matcher(body ?? '').find() ? 1 : 0;
    return { values };
  } catch (err) {
    return { values: { duration_ms: ms() }, inconclusive: `${spec.method || 'GET'} ${url.href}: ${fetchErrorMessage(err, timeoutMs)}` };
  }
}

function statusOk(spec: WebCheckSpec, status: number): boolean {
  return spec.expectStatus && spec.expectStatus.length > 0 ? spec.expectStatus.includes(status) : status >= 200 && status < 300;
}

/** For checks without a condition (smoke checks): passed, or why not. */
export function webCheckVerdict(spec: WebCheckSpec, m: Measurement): { ok: true } | { ok: false; reason: string } {
  if (m.error) return { ok: false, reason: m.error };
  if (m.inconclusive) return { ok: false, reason: m.inconclusive };
  if (m.values.status_ok !== 1) {
    const want = spec.expectStatus?.length ? spec.expectStatus.join(' or ') : '2xx';
    return { ok: false, reason: `${spec.url}: status ${m.values.status}, expected ${want}` };
  }
  if (m.values.body_matches === 0) return { ok: false, reason: `${spec.url}: the body does not match /${spec.expectBody}/` };
  return { ok: true };
}

async function readPrefix(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < max) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    if (size >= max) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, max));
}

async function drain(res: Response): Promise<void> {
  if (!res.body) return;
  // Read it through (keep-alive connections stay usable) unless it is large.
  let size = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_BODY) {
        await reader.cancel().catch(() => {});
        break;
      }
    }
  } finally {
    reader.releaseLock();
  }
}
