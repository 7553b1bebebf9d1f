// The approval gate: who may approve a release, and whether it has enough approvals. Four eyes:
// the author of a change (by commit e-mail, or the user who set the release going) cannot
// approve it, and nobody counts twice.
import type { Role } from '../../store/access.js';

export interface Approver {
  name: string;
  /** The user's e-mail (users.email), compared with the commit's author. */
  email?: string | null;
  role: Role | string;
}

export interface ApprovalSubject {
  /** A user name, or a non-user actor like 'pipeline' (see NON_USER_ACTORS). */
  createdBy: string;
  /** The commit author's e-mail. */
  authorEmail?: string | null;
}

/** Values of releases.created_by that are not people, so no user "is" them. */
export const NON_USER_ACTORS: readonly string[] = ['pipeline', 'controller', 'system'];

/** Roles that may approve. */
export const APPROVER_ROLES: readonly string[] = ['deployer', 'admin'];

export type ApprovalCheck = { ok: true } | { ok: false; reason: string };

export function checkApproval(input: { approver: Approver; release: ApprovalSubject; existing: readonly string[] }): ApprovalCheck {
  const { approver, release, existing } = input;
  if (!APPROVER_ROLES.includes(approver.role)) {
    return { ok: false, reason: `approving needs the deployer or admin role; ${approver.name} is ${approver.role}` };
  }
  const mine = normEmail(approver.email);
  const author = normEmail(release.authorEmail);
  const isCreator = !NON_USER_ACTORS.includes(release.createdBy) && release.createdBy === approver.name;
  if ((mine !== null && mine === author) || isCreator) {
    return { ok: false, reason: 'four eyes: the author of a change cannot approve it' };
  }
  if (existing.includes(approver.name)) return { ok: false, reason: `${approver.name} has already approved this release` };
  return { ok: true };
}

/** Whether `approvals` (the names of who approved) reach `required`; each person counts once. */
export function approvalsSatisfied(required: number, approvals: readonly string[]): boolean {
  return new Set(approvals).size >= required;
}

function normEmail(e: string | null | undefined): string | null {
  const t = e?.trim().toLowerCase();
  return t ? t : null;
}
