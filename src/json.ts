import { NotJsonError } from './errors.js';

/**
 * Checks that `value` survives a JSON round trip unchanged in meaning, and
 * returns it. JSON.stringify would silently turn `undefined` in arrays and NaN
 * into null, drop functions, and flatten a Map to `{}`; a task queue must not
 * store something other than what the caller pushed, so those are errors here.
 * Objects with a `toJSON` method (such as Date) are stored as what it returns.
 */
export function assertJson(value: unknown, path: string): void {
  check(value, path, new Set());
}

function check(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new NotJsonError(path, `${value} is not a JSON number`);
      return;
    case 'undefined':
      throw new NotJsonError(path, 'undefined is not JSON (use null)');
    case 'bigint':
      throw new NotJsonError(path, 'a BigInt is not JSON (pass it as a string)');
    case 'function':
      throw new NotJsonError(path, 'a function is not JSON');
    case 'symbol':
      throw new NotJsonError(path, 'a symbol is not JSON');
  }
  if (value === null) return;
  const object = value as object;
  if (ancestors.has(object)) throw new NotJsonError(path, 'a circular reference is not JSON');
  if (typeof (object as { toJSON?: unknown }).toJSON === 'function') {
    check((object as { toJSON(): unknown }).toJSON(), path, ancestors);
    return;
  }
  ancestors.add(object);
  if (Array.isArray(object)) {
    for (const [index, item] of object.entries()) check(item, `${path}[${index}]`, ancestors);
  } else {
    const prototype = Object.getPrototypeOf(object);
    if (prototype !== Object.prototype && prototype !== null) {
      const kind = (object as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      throw new NotJsonError(path, `a ${kind} is not JSON (convert it to a plain object or array)`);
    }
    for (const [key, item] of Object.entries(object)) {
      // An undefined property is left out, as JSON.stringify does: it has no JSON form and no meaning lost.
      if (item !== undefined) check(item, `${path}.${key}`, ancestors);
    }
  }
  ancestors.delete(object);
}
