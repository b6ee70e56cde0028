import { describe, expect, it } from 'vitest';
import { HelperError, MAX_LINE_BYTES, parseRequestLine, replyLine } from './helper-protocol.js';

describe('parseRequestLine', () => {
  it('accepts the five operations', () => {
    for (const line of [
      '{"id":1,"op":"list"}',
      '{"id":2,"op":"served"}',
      '{"id":3,"op":"smart","disk":"serial:X"}',
      '{"id":4,"op":"serve","disk":"serial:X","confirmExistingData":true}',
      '{"id":5,"op":"stop","disk":"serial:X"}',
    ]) {
      expect(parseRequestLine(line).ok, line).toBe(true);
    }
  });

  it.each([
    ['{"id":-1,"op":"list"}', /not be negative/],
    ['{"id":1.5,"op":"list"}', /whole number/],
    ['{"op":"list"}', /"id"/],
    ['{"id":1,"op":"list","disk":"x"}', /unknown field "disk"/],
    ['{"id":1,"op":"serve"}', /"disk"/],
    ['{"id":1,"op":"serve","disk":"a\\u0000b"}', /NUL/],
    ['{"id":1,"op":"exec","cmd":"rm -rf /"}', /unknown "op"/],
    ['[1,2]', /unknown "op"|object/],
  ])('refuses %s with a clear message', (line, message) => {
    const parsed = parseRequestLine(line);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toMatch(message);
  });

  it('keeps the id of a refused request so the reply reaches its caller', () => {
    expect(parseRequestLine('{"id":7,"op":"nope"}')).toMatchObject({ ok: false, id: 7 });
    expect(parseRequestLine('nope')).toMatchObject({ ok: false, id: null });
  });

  it('replies are single lines', () => {
    expect(replyLine(3, { error: new HelperError('FAILED', 'a\nb') }).split('\n')).toHaveLength(2);
    expect(MAX_LINE_BYTES).toBeGreaterThanOrEqual(4096 + 100);
  });
});
