// The table of routes and who may call them, as docs/api.md shows it. Generated from the routes
// themselves (scripts/api-table.mjs), and a test fails when the docs fall behind.
import type { RouteAccess } from './access.js';

const WHO: Record<string, string> = {
  public: 'anyone',
  webhook: 'anyone with a valid forge signature',
  runner: 'a runner token',
  viewer: 'viewer and above',
  developer: 'developer and above',
  deployer: 'deployer and above',
  admin: 'admin',
};

export function renderRouteTable(routes: RouteAccess[]): string {
  const rows = [...routes].sort((a, b) => a.url.localeCompare(b.url) || a.method.localeCompare(b.method));
  return ['| method | route | who may call it |', '| --- | --- | --- |', ...rows.map((r) => `| ${r.method} | \`${r.url}\` | ${WHO[r.access]} (\`${r.access}\`) |`)].join('\n') + '\n';
}
