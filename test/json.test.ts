import { describe, expect, it } from 'vitest';
import { assertJson } from '../src/json.js';

describe('assertJson’s bound on the size of the JSON', () => {
  // The push and result limits trust the bound when it is under the limit: it must never be short.
  it.each([
    ['an empty array', []],
    ['empty containers', [{}, [], [[]], { a: {} }]],
    ['escaped characters', ['"\\\n\t\u0001\u001f\u007f', { '"\u0001\\': '\b\f\r' }]],
    ['multi-byte characters', ['é€😀𠜎\uFFFF', { 'ключ 😀': 'значение' }]],
    ['the longest numbers', [-2.2250738585072014e-308, -1.7976931348623157e308, 5e-324, -0, 1e21]],
    ['literals', [true, false, null, [null, true]]],
    ['objects with toJSON', [new Date(0), { at: new Date(8.64e15) }, { toJSON: () => ({ x: 'é' }) }]],
    ['undefined properties, which are left out', [{ a: undefined, b: 1, c: undefined }]],
    ['deep nesting', [[[[[[[[[['deep']]]]]]]]], { a: { b: { c: { d: [1, { e: 'f' }] } } } }]],
    ['a null prototype', [Object.assign(Object.create(null), { k: 'v' })]],
  ])('%s', (_, value) => {
    const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8');
    expect(assertJson(value, 'args')).toBeGreaterThanOrEqual(bytes);
  });

  it('stays within six bytes a character of text, so that most values are not counted again', () => {
    const text = 'x'.repeat(1000);
    expect(assertJson([text], 'args')).toBeLessThanOrEqual(6 * 1000 + 10);
  });
});
