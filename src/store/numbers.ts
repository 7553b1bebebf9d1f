// Pipeline numbers for runs recorded through the journal: taken at the start of a run from a
// small counter file under Ferry's home (a lock file keeps concurrent runs apart), so the run
// can say "pipeline #12" without opening the store. The store keeps the number it is given
// (src/store/pipelines.ts takePipelineNumber) and only picks another if it was taken already.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock } from './lock.js';

export async function takeLocalPipelineNumber(home: string, project: string): Promise<number> {
  const file = join(home, 'pipeline-numbers.json');
  const lock = await acquireLock(`${file}.lock`, { timeoutMs: 10_000, pollMs: 5 });
  try {
    const counters = await readFile(file, 'utf8').then(
      (t) => JSON.parse(t) as Record<string, number>,
      () => ({}) as Record<string, number>,
    );
    const n = (counters[project] ?? 0) + 1;
    counters[project] = n;
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(counters));
    await rename(tmp, file);
    return n;
  } finally {
    await lock.release();
  }
}
