/**
 * What of a type would not survive the trip through JSON (a task's arguments and
 * result are stored as jsonb): a Date comes back a string, a Map an empty object, a
 * bigint does not serialise at all. Never for a type that travels intact (and for
 * `unknown` and `any`, which say nothing). Looks a few levels deep, which is what a
 * handler's parameters are.
 */
type JsonIssue<T, Depth extends unknown[] = []> = 0 extends 1 & T
  ? never
  : Depth['length'] extends 6
    ? never
    : T extends string | number | boolean | null | undefined
      ? never
      : T extends bigint
        ? 'a bigint'
        : T extends Date
          ? 'a Date'
          : T extends ReadonlyMap<unknown, unknown>
            ? 'a Map'
            : T extends ReadonlySet<unknown>
              ? 'a Set'
              : T extends symbol
                ? 'a symbol'
                : T extends (...args: never[]) => unknown
                  ? 'a function (or an instance of a class with methods)'
                  : T extends readonly unknown[]
                    ? JsonIssue<T[number], [...Depth, 0]>
                    : T extends object
                      ? { [K in keyof T]-?: JsonIssue<T[K], [...Depth, 0]> }[keyof T]
                      : never;

/**
 * Intersected with a handler's function type: nothing when its parameters `A` and result
 * `R` are JSON, else a property the function lacks, whose name and type say what is
 * wrong, so the compiler's error reads as the explanation.
 */
export type JsonHonest<A extends unknown[], R> = [JsonIssue<A>] extends [never]
  ? [JsonIssue<Awaited<R>>] extends [never]
    ? unknown
    : {
        'pgtq: a handler result is stored as JSON': `${JsonIssue<Awaited<R>>} does not survive it: return JSON values (a Date as an ISO string)`;
      }
  : {
      'pgtq: handler arguments travel as JSON': `${JsonIssue<A>} does not survive it: take JSON values (a Date as an ISO string), or give the handler an args schema that transforms them`;
    };
