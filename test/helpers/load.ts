// The load generator lives with the demo (src/demo/load.ts), which puts users' traffic on
// production; tests and benches use the same one.
export * from '../../src/demo/load.js';
