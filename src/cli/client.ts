// Talking to a Ferry server from the command line: where it is and who we are.
import type { Command } from 'commander';
import { CliError, EXIT } from './exit-codes.js';

export interface ClientOptions {
  server: string;
  token?: string;
}

export function addClientOptions(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'the Ferry server (env FERRY_SERVER)', process.env.FERRY_SERVER ?? 'http://127.0.0.1:7700')
    .option('--token <token>', 'your API token (env FERRY_TOKEN)', process.env.FERRY_TOKEN);
}

/** A GET whose answer is text (logs), not JSON. */
export async function apiText(o: ClientOptions, path: string): Promise<string> {
  return request(o, 'GET', path, undefined, (text) => text) as Promise<string>;
}

export async function api<T>(o: ClientOptions, method: string, path: string, body?: unknown): Promise<T> {
  return request(o, method, path, body, (text) => (text ? JSON.parse(text) : null)) as Promise<T>;
}

async function request(o: ClientOptions, method: string, path: string, body: unknown, parse: (text: string) => unknown): Promise<unknown> {
  if (!o.token) throw new CliError('no API token: pass --token or set FERRY_TOKEN (the first start of `ferry server` prints one)', EXIT.USAGE);
  let res: Response;
  try {
    res = await fetch(`${o.server.replace(/\/+$/, '')}${path}`, {
      method,
      headers: { authorization: `Bearer ${o.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new CliError(`cannot reach the server at ${o.server}: ${(err as Error).cause ?? (err as Error).message}`, EXIT.ENVIRONMENT);
  }
  const text = await res.text();
  if (!res.ok) {
    let parsed: { message?: unknown; error?: unknown } | null = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: the text is the message
    }
    const msg = parsed?.message ?? parsed?.error ?? text;
    throw new CliError(`${method} ${path}: ${res.status} ${typeof msg === 'string' ? msg : JSON.stringify(parsed)}`, res.status === 401 || res.status === 403 ? EXIT.USAGE : EXIT.FAILED);
  }
  return parse(text);
}
