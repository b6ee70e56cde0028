import { describe, expect, it } from 'vitest';
import { LineFramer, MessageTooLargeError } from './line-framer.js';

describe('LineFramer', () => {
  it('splits lines and joins lines split across chunks', () => {
    const framer = new LineFramer(100);
    expect(framer.push(Buffer.from('{"a":1}\n{"b"'))).toEqual(['{"a":1}']);
    expect(framer.push(Buffer.from(':2}\n\n{"c":3}\n'))).toEqual(['{"b":2}', '{"c":3}']);
  });

  it('keeps multi-byte characters split across chunks intact', () => {
    const framer = new LineFramer(100);
    const bytes = Buffer.from('"é"\n');
    expect(framer.push(bytes.subarray(0, 2))).toEqual([]);
    expect(framer.push(bytes.subarray(2))).toEqual(['"é"']);
  });

  it('refuses a line over the cap, even before its newline arrives', () => {
    const framer = new LineFramer(10);
    expect(() => framer.push(Buffer.from('x'.repeat(11)))).toThrow(MessageTooLargeError);
    const other = new LineFramer(10);
    other.push(Buffer.from('x'.repeat(6)));
    expect(() => other.push(Buffer.from('x'.repeat(6) + '\n'))).toThrow(MessageTooLargeError);
  });
});
