// What people do to environments from the command line, through the server's API:
// ferry status, promote, abort, rollback, approve, releases.
import type { Command } from 'commander';
import { addClientOptions, api, apiText, type ClientOptions } from './client.js';
import { CliError, EXIT } from './exit-codes.js';

interface ProjectOption extends ClientOptions {
  project?: string;
  json?: boolean;
}

interface ReleaseView {
  id: string;
  environment: string;
  number: number;
  status: string;
  reason: string | null;
  sha: string;
  branch: string | null;
  createdBy: string;
  strategy: string;
  step: number;
  weight: number;
  instances: string[];
  createdAt: string;
  finishedAt: string | null;
}

interface EnvStatus {
  name: string;
  url: string | null;
  stable: ReleaseView | null;
  active: ReleaseView | null;
  measurements: { at: string; metric: string; outcome: string; values: Record<string, number | null>; message: string | null }[];
  instances: { id: string; release: string; state: string; port: number; restarts: number }[];
  edge: string | null;
  releases: ReleaseView[];
}

function withProject(cmd: Command): Command {
  return addClientOptions(cmd.option('-p, --project <id>', 'the project (default: the only one on the server; env FERRY_PROJECT)', process.env.FERRY_PROJECT));
}

/** The project named, or the server's only one. */
async function projectId(o: ProjectOption): Promise<number> {
  if (o.project) {
    if (/^\d+$/.test(o.project)) return Number(o.project);
    const all = await api<{ id: number; name: string }[]>(o, 'GET', '/api/projects');
    const p = all.find((x) => x.name === o.project);
    if (!p) throw new CliError(`no project named ${o.project} (see ferry project list)`, EXIT.USAGE);
    return p.id;
  }
  const all = await api<{ id: number; name: string }[]>(o, 'GET', '/api/projects');
  if (all.length === 1) return all[0]!.id;
  throw new CliError(all.length === 0 ? 'the server has no projects yet (ferry project add PATH)' : `the server has ${all.length} projects: pass --project ID (see ferry project list)`, EXIT.USAGE);
}

async function envStatus(o: ProjectOption, env: string): Promise<{ project: number; status: EnvStatus }> {
  const project = await projectId(o);
  return { project, status: await api<EnvStatus>(o, 'GET', `/api/projects/${project}/environments/${encodeURIComponent(env)}`) };
}

/** The release a command acts on: `rel_…`, `#N` / `N` of the environment, or the one under way. */
async function releaseOf(o: ProjectOption, env: string, ref?: string): Promise<ReleaseView> {
  const { status } = await envStatus(o, env);
  if (ref) {
    if (ref.startsWith('rel_')) return api<ReleaseView>(o, 'GET', `/api/releases/${ref}`);
    const n = Number(ref.replace(/^#/, ''));
    const r = status.releases.find((x) => x.number === n);
    if (!r) throw new CliError(`no release #${ref} of ${env} among the latest ten; use its id (rel_…)`, EXIT.USAGE);
    return r;
  }
  if (!status.active) throw new CliError(`no release of ${env} is under way${status.stable ? ` (#${status.stable.number} serves it)` : ''}`, EXIT.FAILED);
  return status.active;
}

function line(r: ReleaseView): string {
  const extra = r.status === 'progressing' ? ` step ${r.step}, ${r.weight}% of traffic` : r.reason ? ` — ${r.reason}` : '';
  return `#${r.number} ${r.status}${extra} (${r.sha.slice(0, 12)}${r.branch ? ` on ${r.branch}` : ''}, ${r.strategy}, by ${r.createdBy}) ${r.id}`;
}

function print(o: ProjectOption, value: unknown, text: string): void {
  process.stdout.write(o.json ? `${JSON.stringify(value, null, 2)}\n` : text);
}

export function registerDelivery(program: Command): void {
  withProject(
    program
      .command('status')
      .description('What serves an environment, the release under way, its latest measurements and instances.')
      .argument('<environment>')
      .option('--json', 'print JSON')
      .addHelpText(
        'after',
        `
Examples:
  ferry status production                 what serves it, the release under way, measurements
  ferry status production --json | jq .active.weight
  ferry status staging --project 2 --server http://ci.internal:7700`,
      ),
  ).action(async (env: string, o: ProjectOption) => {
    const { status: s } = await envStatus(o, env);
    const out: string[] = [`${s.name}${s.url ? ` at ${s.url}` : ''}`];
    out.push(`  serving:  ${s.stable ? line(s.stable) : 'nothing yet'}`);
    if (s.active) out.push(`  under way: ${line(s.active)}`);
    if (s.instances.length) {
      out.push('  instances:');
      for (const i of s.instances) out.push(`    ${i.id}  ${i.state}  port ${i.port}${i.restarts ? `  ${i.restarts} restarts` : ''}`);
    }
    if (s.edge) out.push(`  ${s.edge}`);
    if (s.measurements.length) {
      out.push('  latest measurements:');
      for (const m of s.measurements.slice(-8)) out.push(`    ${m.at.slice(11, 19)} ${m.metric} ${m.outcome} ${JSON.stringify(m.values)}${m.message ? ` ${m.message}` : ''}`);
    }
    print(o, s, `${out.join('\n')}\n`);
  });

  withProject(
    program
      .command('releases')
      .description('The latest releases of an environment.')
      .argument('<environment>')
      .option('--json', 'print JSON')
      .addHelpText(
        'after',
        `
Examples:
  ferry releases production
  ferry releases production --json | jq -r '.[] | "\\(.number) \\(.status) \\(.reason)"'`,
      ),
  ).action(async (env: string, o: ProjectOption) => {
    const { status: s } = await envStatus(o, env);
    print(o, s.releases, s.releases.map((r) => `${line(r)}\n`).join('') || `no releases of ${env}\n`);
  });

  withProject(
    program
      .command('app-logs')
      .description("What the application's instances wrote: the release serving the environment, or --release N.")
      .argument('<environment>')
      .option('--release <ref>', 'a release id or number (default: the one under way, else the one serving)')
      .option('--tail <bytes>', 'bytes from the end of each instance log', (v: string) => Number.parseInt(v, 10))
      .addHelpText(
        'after',
        `
Examples:
  ferry app-logs production                   the release under way, else the one serving
  ferry app-logs production --release 12      what release #12's instances wrote
  ferry app-logs production --tail 4096       the last 4 KiB of each instance's log`,
      ),
  ).action(async (env: string, o: ProjectOption & { release?: string; tail?: number }) => {
    let id: string;
    if (o.release) id = (await releaseOf(o, env, o.release)).id;
    else {
      const { status } = await envStatus(o, env);
      const r = status.active ?? status.stable;
      if (!r) throw new CliError(`${env} has no release yet`, EXIT.FAILED);
      id = r.id;
    }
    const text = await apiText(o, `/api/releases/${id}/logs${o.tail ? `?tail=${o.tail}` : ''}`);
    process.stdout.write(text);
  });

  withProject(
    program
      .command('promote')
      .description('Move the release under way past its pause or approval step; --full goes straight to 100%.')
      .argument('<environment>')
      .option('--full', 'skip every remaining step')
      .option('--release <ref>', 'a release id or number (default: the one under way)')
      .addHelpText(
        'after',
        `
Examples:
  ferry promote production                past the current pause, analysis or approval step
  ferry promote production --full         skip every remaining step: 100% now
  ferry promote production --release 14`,
      ),
  ).action(async (env: string, o: ProjectOption & { full?: boolean; release?: string }) => {
    const r = await releaseOf(o, env, o.release);
    await api(o, 'POST', `/api/releases/${r.id}/promote`, { full: o.full ?? false });
    process.stdout.write(`Promoting ${env}#${r.number}${o.full ? ' to 100%' : ''}.\n`);
  });

  withProject(
    program
      .command('abort')
      .description('Stop the release under way: traffic goes back to the stable release at once.')
      .argument('<environment>')
      .option('--reason <text>', 'why (kept in the audit log)')
      .addHelpText(
        'after',
        `
Examples:
  ferry abort production
  ferry abort production --reason "checkout errors in the canary"`,
      ),
  ).action(async (env: string, o: ProjectOption & { reason?: string }) => {
    const r = await releaseOf(o, env);
    await api(o, 'POST', `/api/releases/${r.id}/abort`, { reason: o.reason });
    process.stdout.write(`Aborting ${env}#${r.number}: traffic returns to the stable release.\n`);
  });

  withProject(
    program
      .command('rollback')
      .description('Roll an environment back: stop the release under way, or redeploy the previous good release (or --to).')
      .argument('<environment>')
      .option('--to <release>', 'the release to go back to (number or id)')
      .option('--reason <text>', 'why (kept in the audit log)')
      .addHelpText(
        'after',
        `
Examples:
  ferry rollback production               stop the release under way, or redeploy the previous good one
  ferry rollback production --to 12       redeploy release #12 from its kept files
  ferry rollback production --reason "v2 breaks checkout"`,
      ),
  ).action(async (env: string, o: ProjectOption & { to?: string; reason?: string }) => {
    const project = await projectId(o);
    const r = await api<{ rollingBack?: string; release?: ReleaseView; redeploys?: string }>(o, 'POST', `/api/projects/${project}/environments/${encodeURIComponent(env)}/rollback`, { to: o.to?.replace(/^#/, ''), reason: o.reason });
    process.stdout.write(r.release ? `Rolling ${env} back: release #${r.release.number} redeploys ${r.redeploys}.\n` : `Rolling ${env} back: the release under way is stopped and traffic returns to the stable release.\n`);
  });

  withProject(
    program
      .command('approve')
      .description('Approve a release (not your own change: four eyes). Admins may let one through a freeze with --override-freeze --reason.')
      .argument('<environment>')
      .option('--release <ref>', 'a release id or number (default: the one under way)')
      .option('--comment <text>', 'a note kept with the approval')
      .option('--override-freeze', 'let the release through a freeze window (admins)')
      .option('--reason <text>', 'why the freeze is overridden')
      .addHelpText(
        'after',
        `
Examples:
  ferry approve production                the release under way
  ferry approve production --release 14 --comment "staging looks right"
  ferry approve production --override-freeze --reason "security fix"   admins only`,
      ),
  ).action(async (env: string, o: ProjectOption & { release?: string; comment?: string; overrideFreeze?: boolean; reason?: string }) => {
    const r = await releaseOf(o, env, o.release);
    const res = await api<{ approved?: boolean; approvals?: number; required?: number; overridden?: boolean }>(o, 'POST', `/api/releases/${r.id}/approve`, {
      comment: o.comment,
      overrideFreeze: o.overrideFreeze,
      reason: o.reason,
    });
    process.stdout.write(res.overridden ? `Freeze overridden for ${env}#${r.number}.\n` : `Approved ${env}#${r.number} (${res.approvals}/${res.required}).\n`);
  });
}
