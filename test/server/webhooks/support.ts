// Shared by the webhook tests: payloads from fixtures and from GitHub's own examples, signed the
// way each forge signs them.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../../../src/package-root.js';
import { fixture } from '../../helpers/paths.js';
import type { WebhookRequest } from '../../../src/server/webhooks/types.js';

export const SECRET = 'It\'s a Secret to Everybody';

export function hmacHex(body: Buffer, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** The raw bytes of test/fixtures/webhooks/<name>. */
export function fixtureBody(name: string): Buffer {
  return readFileSync(fixture('webhooks', name));
}

export function json(body: Buffer): any {
  return JSON.parse(body.toString('utf8'));
}

export function bytes(payload: unknown): Buffer {
  return Buffer.from(JSON.stringify(payload));
}

type Definition = { name: string; examples: any[] };
let definitions: Definition[] | undefined;

/** A deep copy of one of GitHub's example payloads (api.github.com set). */
export function githubExample(event: string, index: number): any {
  // Resolved from the package root so this works from test/ under tsx and from dist/test/.
  definitions ??= createRequire(join(packageRoot(), 'package.json'))('@octokit/webhooks-examples') as Definition[];
  const def = definitions.find((d) => d.name === event);
  if (!def || !def.examples[index]) throw new Error(`no GitHub example ${event}[${index}]`);
  return structuredClone(def.examples[index]);
}

export function request(rawBody: Buffer, headers: WebhookRequest['headers']): WebhookRequest {
  return { rawBody, headers };
}

/** A copy of `body` with one byte changed (in a JSON string, so it stays valid JSON). */
export function oneByteChanged(body: Buffer): Buffer {
  const copy = Buffer.from(body);
  const i = copy.indexOf('"') + 1;
  copy[i] = copy[i] === 0x61 ? 0x62 : 0x61;
  return copy;
}
