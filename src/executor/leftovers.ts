// Processes a crashed run left behind. A job runs in its own process group, so when `ferry run`
// itself is killed (kill -9, a crash) its jobs' groups live on; whoever ingests that run's
// journal stops them. A group is only killed when its processes still carry the job's id in
// their environment, so a reused process id is never mistaken for a job.
import { readdirSync, readFileSync } from 'node:fs';

/** Live processes in process group `pgid` whose environment has FERRY_JOB_ID=`jobId`. */
export function jobProcesses(pgid: number, jobId: string): number[] {
  const marker = `FERRY_JOB_ID=${jobId}`;
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found; // No /proc (macOS): nothing can be verified, so nothing is killed.
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): state ppid pgrp ...
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid || fields[0] === 'Z') continue;
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(marker)) found.push(Number(entry));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return found;
}

/** Kills what is left of a job's process group; returns how many processes were found. */
export function killJobLeftovers(pgid: number, jobId: string): number {
  const pids = jobProcesses(pgid, jobId);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  return pids.length;
}
