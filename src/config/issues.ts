import type { ConfigIssue, SourcePos } from './types.js';
import type { Loc } from './positions.js';

/** Collects problems for one file; dedupes because templates and aliases repeat the same node. */
export class Issues {
  readonly list: ConfigIssue[] = [];
  private seen = new Set<string>();

  constructor(readonly file: string) {}

  pos(l: Loc | undefined): SourcePos {
    return { file: this.file, line: l?.line ?? 1, col: l?.col ?? 1 };
  }

  add(code: string, at: Loc | undefined, message: string, hint?: string): void {
    const pos = this.pos(at);
    const key = `${pos.line}:${pos.col}:${code}:${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const issue: ConfigIssue = { pos, message, code };
    if (hint !== undefined) issue.hint = hint;
    this.list.push(issue);
  }

  sorted(): ConfigIssue[] {
    return [...this.list].sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
  }
}
