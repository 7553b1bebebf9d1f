// Parsers for command-line option values, shared by the commands.
import { InvalidArgumentError } from 'commander';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of 1 or more.');
  return n;
}

/** `-v KEY=VALUE`, repeatable: collected into one object. */
export function parseVars(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected KEY=VALUE, got \`${value}\`.`);
  const key = value.slice(0, eq);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new InvalidArgumentError(`\`${key}\` is not a variable name (letters, digits, _; not starting with a digit).`);
  return { ...previous, [key]: value.slice(eq + 1) };
}
