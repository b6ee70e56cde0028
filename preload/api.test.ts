import { describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, parseRequest } from './api.js';

const request = (overrides: Record<string, unknown> = {}) => ({
  type: 'request',
  version: CONTRACT_VERSION,
  id: 7,
  method: 'version',
  params: {},
  ...overrides,
});

describe('parseRequest', () => {
  it('accepts a well-formed request', () => {
    expect(parseRequest(request())).toEqual({ ok: true, id: 7, method: 'version', params: {} });
  });

  it('treats missing params as an empty object', () => {
    const { params: _params, ...withoutParams } = request();
    expect(parseRequest(withoutParams)).toMatchObject({ ok: true, params: {} });
  });

  it.each([
    ['a string', 'hello'],
    ['null', null],
    ['an array', [1, 2]],
    ['a wrong type tag', request({ type: 'event' })],
    ['a fractional id', request({ id: 1.5 })],
    ['a negative id', request({ id: -1 })],
    ['a numeric method', request({ method: 42 })],
    ['an overlong method', request({ method: 'x'.repeat(500) })],
    ['an extra field', request({ extra: true })],
  ])('refuses %s as BAD_MESSAGE', (_what, raw) => {
    const result = parseRequest(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe('BAD_MESSAGE');
      expect(result.error.message).toMatch(/malformed request/);
    }
  });

  it('keeps the id of a malformed request when it has one, so the reply can be matched', () => {
    expect(parseRequest(request({ method: 42 }))).toMatchObject({ ok: false, id: 7 });
  });

  it('refuses another contract version', () => {
    expect(parseRequest(request({ version: CONTRACT_VERSION + 1 }))).toMatchObject({
      ok: false,
      error: { code: 'VERSION_MISMATCH' },
    });
  });

  it('refuses an unknown method, including inherited property names', () => {
    for (const method of ['nope', 'toString', '__proto__', 'constructor']) {
      expect(parseRequest(request({ method }))).toMatchObject({ ok: false, error: { code: 'UNKNOWN_METHOD' } });
    }
  });

  it('refuses parameters the method does not take, naming them', () => {
    const result = parseRequest(request({ params: { verbose: true } }));
    expect(result).toMatchObject({ ok: false, error: { code: 'INVALID_PARAMS' } });
    if (!result.ok) expect(result.error.message).toMatch(/verbose/);
  });

  it('refuses non-object parameters', () => {
    expect(parseRequest(request({ params: 'x' }))).toMatchObject({ ok: false, error: { code: 'INVALID_PARAMS' } });
  });
});
