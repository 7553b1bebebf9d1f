// A separate process that opens a store and holds it: prints "open <pid>", then closes the store
// when it reads a line on stdin (or never, until killed).
import { openDb } from '../../src/store/open.js';

const [home, snapshot] = process.argv.slice(2);
const db = await openDb({ home, snapshot: snapshot || false });
process.stdout.write(`open ${process.pid}\n`);
process.stdin.once('data', async () => {
  await db.close();
  process.stdout.write('closed\n');
  process.exit(0);
});
