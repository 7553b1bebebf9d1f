// `ferry logs --project N <pipeline> <job> [-f]`: a job's log from a Ferry server, or followed
// live (the SSE stream of GET /api/jobs/:id/log?follow=1) until the job ends. A dropped stream
// is picked up again where it stopped (Last-Event-ID), so nothing is printed twice or missed.
import { api, apiText, type ClientOptions } from './client.js';
import { CliError, EXIT } from './exit-codes.js';
import { SseParser } from './sse.js';

export interface ServerLogsOptions extends ClientOptions {
  project: string;
  attempt?: number;
  follow?: boolean;
}

interface PipelineJson {
  id: string;
  number: number;
  jobs: { id: string; name: string; status: string }[];
}

/** How often a dropped stream is picked up again before giving up. */
const RECONNECTS = 5;

export async function serverLogs(ref: string, name: string, o: ServerLogsOptions): Promise<void> {
  if (!/^\d+$/.test(o.project)) throw new CliError(`a project is its number (see GET /api/projects), not \`${o.project}\``, EXIT.USAGE);
  if (ref !== 'latest' && !/^\d+$/.test(ref)) throw new CliError(`a pipeline is its number or "latest", not \`${ref}\``, EXIT.USAGE);
  const [found] = await api<{ id: string; number: number }[]>(o, 'GET', `/api/projects/${o.project}/pipelines?limit=1${ref === 'latest' ? '' : `&before=${Number(ref) + 1}`}`);
  if (!found || (ref !== 'latest' && found.number !== Number(ref))) throw new CliError(`project ${o.project} has no pipeline ${ref === 'latest' ? 'yet' : `#${ref}`}`, EXIT.USAGE);
  const pipeline = await api<PipelineJson>(o, 'GET', `/api/pipelines/${found.id}`);
  const job = pipeline.jobs.find((j) => j.name === name);
  if (!job) throw new CliError(`pipeline #${pipeline.number} has no job \`${name}\`; its jobs: ${pipeline.jobs.map((j) => j.name).join(', ')}`, EXIT.USAGE);
  const attempt = o.attempt ? `attempt=${o.attempt}` : '';
  if (!o.follow) {
    const text = await apiText(o, `/api/jobs/${job.id}/log${attempt ? `?${attempt}` : ''}`);
    process.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
    return;
  }
  const end = await follow(o, `/api/jobs/${job.id}/log?follow=1${attempt ? `&${attempt}` : ''}`);
  process.stderr.write(`ferry: ${name} of pipeline #${pipeline.number}: ${end.status}${end.exitCode === null || end.exitCode === undefined ? '' : ` (exit ${end.exitCode})`}${end.logTruncated ? ', log truncated' : ''}\n`);
  // Like `ferry run`: a script can tell from the exit code whether the job passed.
  if (end.status !== 'success') process.exitCode = EXIT.FAILED;
}

interface EndEvent {
  status: string;
  exitCode?: number | null;
  logTruncated?: boolean;
}

async function follow(o: ClientOptions, path: string): Promise<EndEvent> {
  let lastId: string | undefined;
  let lastError = 'the connection dropped';
  for (let tries = 0; ; tries++) {
    let res: Response;
    try {
      res = await fetch(`${o.server.replace(/\/+$/, '')}${path}`, {
        headers: { authorization: `Bearer ${o.token}`, accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
      });
    } catch (err) {
      if (tries < RECONNECTS && lastId) {
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      throw new CliError(`cannot reach the server at ${o.server}: ${(err as Error).cause ?? (err as Error).message}`, EXIT.ENVIRONMENT);
    }
    if (!res.ok || !res.body) throw new CliError(`GET ${path}: ${res.status} ${await res.text()}`, res.status === 401 || res.status === 403 ? EXIT.USAGE : EXIT.FAILED);
    const decoder = new TextDecoder();
    let end: EndEvent | null = null;
    const parser = new SseParser((e) => {
      if (e.type === 'log') {
        process.stdout.write((JSON.parse(e.data) as { text: string }).text);
        lastId = e.id ?? lastId;
      } else if (e.type === 'end') {
        end = JSON.parse(e.data) as EndEvent;
      } else if (e.type === 'error') {
        // The server let this stream go (a viewer too far behind, a store error): read on.
        lastError = (JSON.parse(e.data) as { message: string }).message;
      }
    });
    try {
      for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
        parser.push(decoder.decode(bytes, { stream: true }));
        if (end) return end;
      }
    } catch {
      // The connection dropped mid-stream: read on from the last event.
    }
    if (tries >= RECONNECTS) throw new CliError(`the log stream from ${o.server} kept breaking off (${lastError}); run the command again to read on`, EXIT.ENVIRONMENT);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
