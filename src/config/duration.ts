// Durations as people write them in CI files. GitLab accepts ChronicDuration's human forms
// ("1 hour 30 minutes", "3 mins"), so files brought over from GitLab must keep working here.

const UNIT_MS: Record<string, number> = {};
const units: [number, string[]][] = [
  [1, ['ms', 'msec', 'msecs', 'millisecond', 'milliseconds']],
  [1000, ['s', 'sec', 'secs', 'second', 'seconds']],
  [60_000, ['m', 'min', 'mins', 'minute', 'minutes']],
  [3_600_000, ['h', 'hr', 'hrs', 'hour', 'hours']],
  [86_400_000, ['d', 'day', 'days']],
  [604_800_000, ['w', 'wk', 'wks', 'week', 'weeks']],
];
for (const [ms, names] of units) for (const n of names) UNIT_MS[n] = ms;

const PART = /(\d+(?:\.\d+)?)\s*([a-z]+)/y;

/**
 * Milliseconds, or null when `s` is not a duration. A bare number (or numeric string) is seconds,
 * as in GitLab. "never" is not a duration: callers that allow it (expire_in) check it first.
 */
export function parseDuration(s: string | number): number | null {
  if (typeof s === 'number') return Number.isFinite(s) && s >= 0 ? Math.round(s * 1000) : null;
  const text = s.trim().toLowerCase();
  if (text === '') return null;
  if (/^\d+(?:\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  let total = 0;
  let i = 0;
  let parts = 0;
  while (i < text.length) {
    // Separators people put between parts: spaces, commas, "and".
    const sep = /(?:\s|,|\band\b)*/y;
    sep.lastIndex = i;
    sep.exec(text);
    i = sep.lastIndex;
    if (i >= text.length) break;
    PART.lastIndex = i;
    const m = PART.exec(text);
    if (!m) return null;
    const unit = UNIT_MS[m[2]];
    if (unit === undefined) return null;
    total += Number(m[1]) * unit;
    i = PART.lastIndex;
    parts++;
  }
  return parts > 0 ? Math.round(total) : null;
}

/** Short human form for messages: 5400000 -> "1h30m". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const out: string[] = [];
  let rest = ms;
  for (const [unit, name] of [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'm'], [1000, 's'], [1, 'ms']] as const) {
    const n = Math.floor(rest / unit);
    if (n > 0) out.push(`${n}${name}`);
    rest -= n * unit;
  }
  return out.join('');
}
