import { CronExpressionParser } from 'cron-parser';
import { ValidationError } from '../errors.js';

/** A cron expression checked by parseCron, with its whitespace normalised. */
export interface CronSpec {
  readonly expression: string;
  readonly tz: string;
}

/**
 * Checks a cron expression and time zone, throwing a ValidationError that says
 * what is wrong. Accepts 5 fields (minute hour day-of-month month day-of-week),
 * 6 with seconds first, or a macro such as `@daily`. cron-parser also reads 3 or 4
 * fields, filling in the rest, which is unlikely to be what was meant: rejected.
 * `tz` is an IANA name such as 'Europe/Berlin' or 'UTC'.
 */
export function parseCron(expression: string, tz = 'UTC'): CronSpec {
  if (typeof tz !== 'string' || !isTimeZone(tz)) {
    throw new ValidationError(
      `Invalid time zone ${JSON.stringify(tz)}: expected an IANA time zone name such as "Europe/Berlin" or "UTC"`,
    );
  }
  if (typeof expression !== 'string') {
    throw new ValidationError(`Invalid cron expression: expected a string, got ${typeof expression}`);
  }
  const normalised = expression.trim().split(/\s+/).join(' ');
  const fields = normalised === '' ? 0 : normalised.split(' ').length;
  if (!normalised.startsWith('@') && fields !== 5 && fields !== 6) {
    throw new ValidationError(
      `Invalid cron expression ${JSON.stringify(expression)}: expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got ${fields}`,
    );
  }
  // cron-parser draws H at random unless seeded, so schedulers would disagree on the fire times.
  if (normalised.split(/[ ,]/).some((part) => /^h/i.test(part))) {
    throw new ValidationError(
      `Invalid cron expression ${JSON.stringify(expression)}: H (hashed values) is not supported; write the value`,
    );
  }
  const key = `${tz} ${normalised}`;
  if (!valid.has(key)) {
    try {
      // Some mistakes only show when a fire time is computed, so compute one.
      CronExpressionParser.parse(normalised, { tz, currentDate: new Date(0) }).next();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ValidationError(`Invalid cron expression ${JSON.stringify(expression)}: ${reason}`, {
        cause: error,
      });
    }
    if (valid.size >= 1000) valid.clear();
    valid.add(key);
  }
  return { expression: normalised, tz };
}

/** Expressions (with their time zone) already checked: the scheduler checks the same ones often. */
const valid = new Set<string>();

/** The first fire time strictly after `after`. */
export function nextFireAfter(expression: string, tz: string, after: Date): Date {
  const spec = parseCron(expression, tz);
  const first = fireTimes(spec, after.getTime()).next();
  // Unreachable for an expression parseCron accepted: cron-parser throws rather than ending.
  if (first.done) throw new ValidationError(`Cron expression "${expression}" never fires again`);
  return first.value;
}

/**
 * The fire times in (afterExclusive, untilInclusive], oldest first; at most
 * `limit` of them, the latest ones (older ones are dropped). With limit 1 this is
 * the latest fire time due.
 */
export function fireTimesBetween(
  expression: string,
  tz: string,
  afterExclusive: Date,
  untilInclusive: Date,
  limit: number,
): Date[] {
  const spec = parseCron(expression, tz);
  const after = afterExclusive.getTime();
  const until = untilInclusive.getTime();
  if (limit < 1 || until <= after) return [];
  // Walking every fire time since `after` costs one step each: millions after a
  // long downtime of a seconds schedule. Only the latest `limit` are wanted, so
  // walk a window that ends at `until`, doubling it until it holds enough.
  for (let spanMs = 60_000; ; spanMs *= 2) {
    const from = Math.max(after, until - spanMs);
    const kept: Date[] = [];
    let count = 0;
    for (const time of fireTimes(spec, from)) {
      if (time.getTime() > until) break;
      count++;
      kept.push(time);
      if (kept.length >= 2 * limit) kept.splice(0, kept.length - limit);
    }
    if (count >= limit || from === after) return kept.slice(-limit);
  }
}

/** Longer than any change of a UTC offset (two hours, for double summer time). */
const DST_MARGIN_MS = 3 * 3_600_000;

/**
 * The fire times after `after`, as cron-parser gives them when it walks through
 * DST changes: a wall time skipped by a spring-forward fires once, just after the
 * gap; a wall time repeated by a fall-back fires once, on its first pass. Walking
 * from a start inside the repeated or just after the skipped hour gives another
 * answer (the repeated 02:30 fires again, the shifted 03:30 is missed), so a start
 * within a few hours of an offset change walks from before the change instead
 * (for a seconds schedule, some 10,000 extra steps, for three hours twice a year).
 */
function* fireTimes(spec: CronSpec, after: number): Generator<Date> {
  const changed = utcOffset(spec.tz, after) !== utcOffset(spec.tz, after - DST_MARGIN_MS);
  const start = changed ? after - DST_MARGIN_MS : after;
  const cron = CronExpressionParser.parse(spec.expression, { tz: spec.tz, currentDate: new Date(start) });
  for (;;) {
    const time = cron.next().toDate();
    if (time.getTime() > after) yield time;
  }
}

const offsetFormats = new Map<string, Intl.DateTimeFormat>();

/** The UTC offset of `tz` at `time`, such as "GMT+02:00". */
function utcOffset(tz: string, time: number): string {
  let format = offsetFormats.get(tz);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'longOffset' });
    offsetFormats.set(tz, format);
  }
  return format.formatToParts(time).find((part) => part.type === 'timeZoneName')?.value ?? '';
}

function isTimeZone(tz: string): boolean {
  if (tz === '') return false;
  try {
    // cron-parser (through Luxon) accepts exactly the zones Intl knows.
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
