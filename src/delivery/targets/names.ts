// Names the controller gives things on the edge, so a restarted controller finds them again.

/** The environment's route on the edge: unique per project and environment. */
export function routeName(projectId: number, environment: string): string {
  return `p${projectId}-${environment.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

/** Instance `i` (from 1) of a release. */
export function instanceId(projectId: number, environment: string, releaseNumber: number, i: number): string {
  return `${routeName(projectId, environment)}-r${releaseNumber}-${i}`;
}

/** The version label traffic of a release is counted under (X-Ferry-Version). */
export function versionLabel(release: { environment: string; number: number }): string {
  return `${release.environment}#${release.number}`;
}
