import { NotJsonError, PayloadTooLargeError } from './errors.js';

// In Node since 20, in TypeScript's lib only from ES2024.
type UnicodeString = string & { isWellFormed(): boolean; toWellFormed(): string };

/**
 * Checks that `value` survives a JSON round trip unchanged in meaning and can be
 * stored by PostgreSQL, or throws NotJsonError. JSON.stringify would silently turn
 * `undefined` in arrays and NaN into null, drop functions, and flatten a Map to
 * `{}`; a task queue must not store something other than what the caller pushed,
 * so those are errors here. Objects with a `toJSON` method (such as Date) are
 * stored as what it returns. Strings and keys must be text PostgreSQL can hold
 * (see `unstorable`).
 *
 * Returns a bound on the size of its JSON in bytes of UTF-8, found on the way
 * without writing the JSON: see `assertJsonSize`.
 */
export function assertJson(value: unknown, path: string): number {
  return check(value, path, new Set());
}

/**
 * Throws PayloadTooLargeError naming `what` if the JSON of `value` is more than
 * `limit` bytes of UTF-8. `atMost` is the bound assertJson returned: most values
 * are far below the limit and are decided by it alone, without writing their
 * JSON. Returns the JSON when it had to write it to count its bytes, so that the
 * caller sends that rather than writing it a second time.
 */
export function assertJsonSize(
  value: unknown,
  atMost: number,
  limit: number,
  what: string,
  option: 'maxArgsBytes' | 'maxResultBytes',
): string | undefined {
  if (atMost <= limit) return undefined;
  const json = JSON.stringify(value);
  // A UTF-16 unit is at most 3 bytes of UTF-8: a JSON text this short fits uncounted.
  if (json.length * 3 > limit) {
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > limit) throw new PayloadTooLargeError(what, bytes, limit, option);
  }
  return json;
}

/**
 * Why PostgreSQL would refuse `text`, or undefined if it would not: neither text
 * nor jsonb can hold U+0000, and jsonb refuses a surrogate that is not half of a
 * pair (JSON.stringify writes it as a `\ud800` escape, which jsonb rejects).
 * `indexOf` and `isWellFormed` scan a string without a regular expression's
 * cost, so the check stays cheap on every string of every push.
 */
export function unstorable(text: string): string | undefined {
  const nul = text.indexOf('\u0000');
  if (nul !== -1) return `holds U+0000 at index ${nul}, which PostgreSQL cannot store`;
  if (!(text as UnicodeString).isWellFormed()) {
    return `holds a lone surrogate at index ${loneSurrogateAt(text)}, which is not Unicode text`;
  }
  return undefined;
}

/** `text` with U+0000 written as `\0` and lone surrogates as U+FFFD, so that PostgreSQL stores it. */
export function storableText(text: string): string {
  if (unstorable(text) === undefined) return text;
  return (text.replaceAll('\u0000', '\\0') as UnicodeString).toWellFormed();
}

function loneSurrogateAt(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
      else return i;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      return i;
    }
  }
  return -1;
}

// Bounds on JSON sizes in bytes of UTF-8. A UTF-16 unit of a string is at most 6
// (a control character is written as \u001f; others take 1 to 3 bytes, a pair 4).
const BYTES_PER_UNIT = 6;
/** The longest number JSON.stringify writes, such as -2.2250738585072014e-308. */
const NUMBER_BYTES = 24;

/** Checks `value` (see assertJson) and returns a bound on its JSON's size. */
function check(value: unknown, path: string, ancestors: Set<object>): number {
  switch (typeof value) {
    case 'string': {
      const problem = unstorable(value);
      if (problem) throw new NotJsonError(path, `the string ${problem}`);
      return 2 + BYTES_PER_UNIT * value.length;
    }
    case 'boolean':
      return 5;
    case 'number':
      if (!Number.isFinite(value)) throw new NotJsonError(path, `${value} is not a JSON number`);
      return NUMBER_BYTES;
    case 'undefined':
      throw new NotJsonError(path, 'undefined is not JSON (use null)');
    case 'bigint':
      throw new NotJsonError(path, 'a BigInt is not JSON (pass it as a string)');
    case 'function':
      throw new NotJsonError(path, 'a function is not JSON');
    case 'symbol':
      throw new NotJsonError(path, 'a symbol is not JSON');
  }
  if (value === null) return 4;
  const object = value as object;
  if (ancestors.has(object)) throw new NotJsonError(path, 'a circular reference is not JSON');
  if (typeof (object as { toJSON?: unknown }).toJSON === 'function') {
    return check((object as { toJSON(): unknown }).toJSON(), path, ancestors);
  }
  ancestors.add(object);
  // Brackets, and a comma after each item (one too many, for a simpler sum).
  let bytes = 2;
  if (Array.isArray(object)) {
    for (const [index, item] of object.entries()) bytes += 1 + check(item, `${path}[${index}]`, ancestors);
  } else {
    const prototype = Object.getPrototypeOf(object);
    if (prototype !== Object.prototype && prototype !== null) {
      const kind = (object as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      throw new NotJsonError(path, `a ${kind} is not JSON (convert it to a plain object or array)`);
    }
    for (const [key, item] of Object.entries(object)) {
      // An undefined property is left out, as JSON.stringify does: it has no JSON form and no meaning lost.
      if (item === undefined) continue;
      const problem = unstorable(key);
      // JSON.stringify escapes the bad character, so the message itself can be stored (as a task's error).
      if (problem) throw new NotJsonError(path, `the key ${JSON.stringify(key)} ${problem}`);
      // "key": value,
      bytes += 4 + BYTES_PER_UNIT * key.length + check(item, `${path}.${key}`, ancestors);
    }
  }
  ancestors.delete(object);
  return bytes;
}
