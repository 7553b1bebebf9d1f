// Artifacts and caches kept in folders under FERRY_HOME, for runs on this machine.
import { createHash } from 'node:crypto';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactKey, ArtifactStore, CacheStore } from './types.js';
import { copyFiles, copyTree, matchFiles, writeDirAtomically } from './files.js';
import { exists, slug } from './workspace.js';

interface ArtifactMeta {
  files: number;
  createdAt: number;
  expiresAt: number | null;
}

export class LocalArtifactStore implements ArtifactStore {
  constructor(private readonly root: string) {}

  private dir(key: ArtifactKey): string {
    return join(this.root, key.pipelineId, key.jobId);
  }

  async save(key: ArtifactKey, fromDir: string, paths: string[], exclude: string[], expireInMs?: number): Promise<number> {
    const files = await matchFiles(fromDir, paths, exclude);
    await writeDirAtomically(this.dir(key), async (tmp) => {
      await copyFiles(fromDir, join(tmp, 'files'), files);
      const now = Date.now();
      const meta: ArtifactMeta = { files: files.length, createdAt: now, expiresAt: expireInMs === undefined ? null : now + expireInMs };
      await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta));
    });
    return files.length;
  }

  async restore(key: ArtifactKey, intoDir: string): Promise<boolean> {
    const dir = this.dir(key);
    const meta = await readFile(join(dir, 'meta.json'), 'utf8').then(
      (t) => JSON.parse(t) as ArtifactMeta,
      () => null,
    );
    if (!meta || (meta.expiresAt !== null && meta.expiresAt < Date.now())) return false;
    if (await exists(join(dir, 'files'))) await copyTree(join(dir, 'files'), intoDir);
    return true;
  }

  /** Deletes expired artifacts; returns how many jobs' artifacts went. */
  async prune(now = Date.now()): Promise<number> {
    let removed = 0;
    for (const pipeline of await readdir(this.root).catch(() => [] as string[])) {
      for (const job of await readdir(join(this.root, pipeline)).catch(() => [] as string[])) {
        const dir = join(this.root, pipeline, job);
        const meta = await readFile(join(dir, 'meta.json'), 'utf8').then(
          (t) => JSON.parse(t) as ArtifactMeta,
          () => null,
        );
        if (meta?.expiresAt != null && meta.expiresAt < now) {
          await rm(dir, { recursive: true, force: true });
          removed++;
        }
      }
    }
    return removed;
  }
}

export class LocalCacheStore implements CacheStore {
  constructor(private readonly root: string) {}

  private dir(key: string): string {
    // Readable and collision-free: the slug for people, a hash for uniqueness.
    return join(this.root, `${slug(key)}-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`);
  }

  async restore(key: string, intoDir: string): Promise<boolean> {
    const dir = this.dir(key);
    if (!(await exists(dir))) return false;
    await copyTree(dir, intoDir);
    return true;
  }

  async save(key: string, fromDir: string, paths: string[]): Promise<number> {
    const files = await matchFiles(fromDir, paths);
    await writeDirAtomically(this.dir(key), (tmp) => copyFiles(fromDir, tmp, files));
    return files.length;
  }
}
