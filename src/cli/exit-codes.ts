// Exit codes of every ferry command, so scripts can tell what happened. Documented in
// docs/cli.md; never reuse a number for something else.
export const EXIT = {
  /** Success: the pipeline passed, the file is valid. */
  OK: 0,
  /** The pipeline failed (`run`, `play`); secrets found (`scan`); an internal error (`validate`, as promised there). */
  FAILED: 1,
  /** The pipeline file is invalid: every problem was printed with file:line:col. */
  CONFIG: 2,
  /** The environment is not usable: not a git repository, store busy, nothing to play, no such folder (`scan`, `init`), a ferry.yml already there (`init` without --force). */
  ENVIRONMENT: 3,
  /** Wrong command-line usage. */
  USAGE: 64,
  /** `ferry audit verify`: the audit log's hash chain is broken (an entry was changed or removed). */
  TAMPERED: 65,
  /** A bug in Ferry: please report it with the output. */
  INTERNAL: 70,
  /** Interrupted (Ctrl-C); jobs were stopped and recorded as canceled. */
  INTERRUPTED: 130,
} as const;

/** An error that carries its exit code and a message meant for people, not a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    public readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
