#!/usr/bin/env node
// Prints the route/access table of docs/api.md from the server's routes (run after a build).
const root = new URL('..', import.meta.url);
const { buildApp } = await import(new URL('dist/src/server/app.js', root).href);
const { renderRouteTable } = await import(new URL('dist/src/server/route-table.js', root).href);
const { EventBus } = await import(new URL('dist/src/events/bus.js', root).href);
// Registering routes needs no store; nothing is served.
const { app, routes } = await buildApp({ db: null, home: '/nonexistent', bus: new EventBus(), leaseMs: 30000 });
process.stdout.write(renderRouteTable(routes));
await app.close();
