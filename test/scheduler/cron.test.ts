import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/index.js';
import { fireTimesBetween, nextFireAfter, parseCron } from '../../src/scheduler/cron.js';

const iso = (dates: Date[]) => dates.map((date) => date.toISOString());
const at = (text: string) => new Date(text);

describe('parseCron', () => {
  it('accepts 5 fields, 6 with seconds first, and macros', () => {
    expect(parseCron('0 3 * * *', 'Europe/Berlin')).toEqual({ expression: '0 3 * * *', tz: 'Europe/Berlin' });
    expect(parseCron('  */10  * * * * * ')).toEqual({ expression: '*/10 * * * * *', tz: 'UTC' });
    expect(parseCron('@daily').expression).toBe('@daily');
  });

  it.each([
    ['0 3 * *', 4],
    ['* * *', 3],
    ['0 0 3 * * * *', 7],
    ['', 0],
  ])('rejects %j: %i fields', (expression, fields) => {
    expect(() => parseCron(expression)).toThrow(ValidationError);
    expect(() => parseCron(expression)).toThrow(
      `Invalid cron expression ${JSON.stringify(expression)}: expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got ${fields}`,
    );
  });

  it('rejects a bad expression with the reason', () => {
    expect(() => parseCron('61 * * * *')).toThrow(/^Invalid cron expression "61 \* \* \* \*": .*61/);
    expect(() => parseCron('0 0 30 2 *')).toThrow(/^Invalid cron expression "0 0 30 2 \*": /);
    expect(() => parseCron('@fortnightly')).toThrow(ValidationError);
    // cron-parser would pick H at random on every parse
    expect(() => parseCron('H 3 * * *')).toThrow('H (hashed values) is not supported');
    expect(parseCron('0 3 * * THU').expression).toBe('0 3 * * THU');
  });

  it('rejects an unknown time zone clearly, not with "Invalid Date"', () => {
    const error = (() => {
      try {
        parseCron('0 3 * * *', 'Europe/Berln');
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({
      code: 'ERR_PGTQ_VALIDATION',
      message:
        'Invalid time zone "Europe/Berln": expected an IANA time zone name such as "Europe/Berlin" or "UTC"',
    });
    expect(() => parseCron('0 3 * * *', '')).toThrow('Invalid time zone ""');
  });
});

describe('nextFireAfter', () => {
  it('is strictly after, in the time zone given', () => {
    expect(nextFireAfter('0 3 * * *', 'UTC', at('2026-01-10T03:00:00Z'))).toEqual(at('2026-01-11T03:00:00Z'));
    expect(nextFireAfter('0 3 * * *', 'Europe/Berlin', at('2026-01-10T12:00:00Z'))).toEqual(
      at('2026-01-11T02:00:00Z'),
    );
    expect(nextFireAfter('0 3 * * *', 'Europe/Berlin', at('2026-07-10T12:00:00Z'))).toEqual(
      at('2026-07-11T01:00:00Z'),
    );
    expect(nextFireAfter('*/15 * * * * *', 'UTC', at('2026-01-10T00:00:15.500Z'))).toEqual(
      at('2026-01-10T00:00:30Z'),
    );
  });
});

describe('fireTimesBetween', () => {
  it('covers (after, until]: after excluded, until included', () => {
    expect(
      iso(fireTimesBetween('* * * * *', 'UTC', at('2026-01-01T00:00:00Z'), at('2026-01-01T00:03:00Z'), 10)),
    ).toEqual(['2026-01-01T00:01:00.000Z', '2026-01-01T00:02:00.000Z', '2026-01-01T00:03:00.000Z']);
    expect(
      fireTimesBetween('* * * * *', 'UTC', at('2026-01-01T00:03:00Z'), at('2026-01-01T00:03:00Z'), 10),
    ).toEqual([]);
  });

  it('keeps the latest `limit` fire times, oldest first', () => {
    expect(
      iso(fireTimesBetween('0 * * * *', 'UTC', at('2026-01-01T00:00:00Z'), at('2026-01-03T00:30:00Z'), 3)),
    ).toEqual(['2026-01-02T22:00:00.000Z', '2026-01-02T23:00:00.000Z', '2026-01-03T00:00:00.000Z']);
  });

  it('finds the latest fire time of a seconds schedule after a year of downtime at once', () => {
    const started = performance.now();
    const latest = fireTimesBetween(
      '* * * * * *',
      'UTC',
      at('2025-01-01T00:00:00Z'),
      at('2026-01-01T12:34:56.789Z'),
      1,
    );
    expect(iso(latest)).toEqual(['2026-01-01T12:34:56.000Z']);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe('DST, a daily 02:30 in Europe/Berlin', () => {
  const daily = (from: string, until: string) =>
    iso(fireTimesBetween('30 2 * * *', 'Europe/Berlin', at(from), at(until), 1000));

  it('fires once on 29 March 2026, at 03:30 CEST, when 02:30 does not exist', () => {
    expect(daily('2026-03-27T00:00:00Z', '2026-03-31T00:00:00Z')).toEqual([
      '2026-03-27T01:30:00.000Z', // 02:30 CET
      '2026-03-28T01:30:00.000Z',
      '2026-03-29T01:30:00.000Z', // 03:30 CEST
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
    ]);
  });

  it('fires once on 25 October 2026, when 02:30 happens twice', () => {
    expect(daily('2026-10-23T00:00:00Z', '2026-10-27T00:00:00Z')).toEqual([
      '2026-10-23T00:30:00.000Z', // 02:30 CEST
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z', // the first 02:30 (CEST) only
      '2026-10-26T01:30:00.000Z', // 02:30 CET
    ]);
  });

  it('gives the same answer from any starting point through both nights', () => {
    // cron-parser alone answers differently when it starts inside the repeated hour
    // or just after the skipped one; a scheduler may start anywhere.
    const all = fireTimesBetween(
      '30 2 * * *',
      'Europe/Berlin',
      at('2026-03-01T00:00:00Z'),
      at('2026-12-01T00:00:00Z'),
      1000,
    );
    // six hours either side of each change (01:00 UTC), every ten minutes
    for (const change of ['2026-03-29T01:00:00Z', '2026-10-25T01:00:00Z']) {
      const from = at(change).getTime() - 6 * 3_600_000;
      for (let t = from; t < from + 12 * 3_600_000; t += 10 * 60_000) {
        const expectedNext = all.find((fire) => fire.getTime() > t);
        expect(nextFireAfter('30 2 * * *', 'Europe/Berlin', new Date(t))).toEqual(expectedNext);
        const due = all.filter((fire) => fire.getTime() <= t);
        expect(fireTimesBetween('30 2 * * *', 'Europe/Berlin', all[0] as Date, new Date(t), 1)).toEqual(
          due.slice(-1),
        );
        // and a scheduler walking tick by tick fires each day once
        expect(
          fireTimesBetween('30 2 * * *', 'Europe/Berlin', new Date(t - 10 * 60_000), new Date(t), 10),
        ).toEqual(all.filter((fire) => fire.getTime() > t - 10 * 60_000 && fire.getTime() <= t));
      }
    }
  });
});
