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

describe('pool and volume requests', () => {
  const params = (method: string, p: unknown) => parseRequest(request({ method, params: p }));
  const file = (name: string) => `file:/images/${name}.img`;

  it.each([
    ['pool-create', { name: 'tank', members: [file('a'), 'nbd+unix:///d?socket=/run/d.sock', 'nbd://host:10809/e'] }],
    ['pool-create', { name: 'tank', members: [file('a')], spares: [file('s')], slabSize: 8 * 1024 * 1024 + 64 * 1024, demo: true, force: false }],
    ['pool-import', { members: ['file:///images/a.img'] }],
    ['pool-import', { members: [file('a')], demo: true }],
    ['pool-export', { pool: 'tank' }],
    ['pool-list', {}],
    ['pool-status', { pool: 'my_pool.2' }],
    ['volume-create', { pool: 'tank', name: 'vm-1', size: 1024 ** 3, layout: 'raid1x3' }],
    ['volume-create', { pool: 'tank', name: 'vm-1', size: 512, layout: 'raid6', width: 6 }],
    ['volume-delete', { pool: 'tank', name: 'vm-1' }],
    ['volume-grow', { pool: 'tank', name: 'vm-1', size: 2 * 1024 ** 3 }],
    ['volume-export', { pool: 'tank', name: 'vm-1' }],
    ['volume-export', { pool: 'tank', name: 'vm-1', tcpPort: 0 }],
    ['volume-unexport', { pool: 'tank', name: 'vm-1' }],
    ['volume-status', { pool: 'tank', name: 'vm-1', firstChunk: 3 }],
    ['member-fail', { pool: 'tank', member: '1a2b' }],
    ['member-restore', { pool: 'tank', member: file('a') }],
    ['volume-corrupt', { pool: 'tank', name: 'vm-1', offset: 0 }],
    ['demo-create', {}],
  ])('accepts %s %j', (method, p) => {
    expect(params(method, p)).toMatchObject({ ok: true, method, params: p });
  });

  it.each([
    ['pool-create', {}, /name: required; members: required/],
    ['pool-create', { name: '-x', members: [file('a')] }, /name: pool name must be letters/],
    ['pool-create', { name: 'x'.repeat(65), members: [file('a')] }, /name: pool name must be/],
    ['pool-create', { name: 'tank', members: [] }, /members: members must name at least 1 member/],
    ['pool-create', { name: 'tank', members: ['images/a.img'] }, /members\.0: a member must be file:\/ABSOLUTE\/PATH/],
    ['pool-create', { name: 'tank', members: ['file:relative.img'] }, /members\.0: a member must be/],
    ['pool-create', { name: 'tank', members: [file('a')], slabSize: 1000 }, /slabSize: slabSize must be at least 1048576 bytes/],
    ['pool-create', { name: 'tank', members: [file('a')], slabSize: 1024 * 1024 + 1 }, /slabSize: slabSize must be a multiple of 4096/],
    ['pool-create', { name: 'tank', members: [file('a')], demo: 'yes' }, /demo: demo must be true or false/],
    ['pool-import', { members: 'file:/a' }, /members: members must be a list/],
    ['pool-export', { pool: 'tank', force: true }, /force: unknown parameter/],
    ['pool-list', { all: true }, /all: unknown parameter/],
    ['pool-status', {}, /pool: required/],
    ['volume-create', { pool: 'tank', name: 'v', size: 1000, layout: 'raid5' }, /size: size must be a multiple of 512/],
    ['volume-create', { pool: 'tank', name: 'v', size: '1G', layout: 'raid5' }, /size: size must be a number of bytes/],
    ['volume-create', { pool: 'tank', name: 'v', size: 1.5, layout: 'raid5' }, /size: size must be a whole number/],
    ['volume-create', { pool: 'tank', name: 'v', size: 512, layout: 'raid7' }, /layout: layout must be one of raid0, raid1, raid1x3, raid10, raid5, raid6/],
    ['volume-create', { pool: 'tank', name: 'v', size: 512, layout: 'raid5', width: 0 }, /width: width must be at least 1/],
    ['volume-create', { pool: 'tank', name: 'a/b', size: 512, layout: 'raid5' }, /name: volume name must be/],
    ['volume-delete', { pool: 'tank' }, /name: required/],
    ['volume-grow', { pool: 'tank', name: 'v', size: 0 }, /size: size must be at least 512/],
    ['volume-export', { pool: 'tank', name: 'v', tcpPort: 65536 }, /tcpPort: tcpPort must be 0 to 65535/],
    ['volume-unexport', { pool: 'tank', name: 'v', tcpPort: 1 }, /tcpPort: unknown parameter/],
    ['volume-status', { pool: 'tank', name: 'v', firstChunk: -1 }, /firstChunk: firstChunk must be at least 0/],
    ['member-fail', { pool: 'tank', member: '' }, /member: member must not be empty/],
    ['member-restore', { pool: 'tank' }, /member: required/],
    ['volume-corrupt', { pool: 'tank', name: 'v', offset: -4096 }, /offset: offset must be at least 0 bytes/],
    ['demo-create', { size: 1 }, /size: unknown parameter/],
  ])('refuses %s %j with a message naming the field', (method, p, message) => {
    const result = params(method, p);
    expect(result).toMatchObject({ ok: false, error: { code: 'INVALID_PARAMS' } });
    if (!result.ok) expect(result.error.message).toMatch(message);
  });
});

describe('drive, plan and job requests (issue 8)', () => {
  const params = (method: string, p: unknown) => parseRequest(request({ method, params: p }));
  const file = (name: string) => `file:/images/${name}.img`;

  it.each([
    ['drives-list', {}],
    ['pool-add-member', { pool: 'tank', members: [file('f'), 'nbd://10.0.0.2:10809/sdb'] }],
    ['pool-add-member', { pool: 'tank', members: [file('f')], force: true }],
    ['pool-remove-member', { pool: 'tank', member: '1a2b' }],
    ['pool-set-spare', { pool: 'tank', member: file('s'), spare: true }],
    ['pool-set-spare', { pool: 'tank', member: '1a2b', spare: false }],
    ['pool-set-policy', { pool: 'tank', policy: {} }],
    ['pool-set-policy', { pool: 'tank', policy: { autoRepair: true, latencyBudget: 2.5 } }],
    ['pool-set-policy', { pool: 'tank', policy: { latencyBudget: 1.1 } }],
    ['plan', { pool: 'tank', action: { kind: 'scrub' } }],
    ['plan', { pool: 'tank', action: { kind: 'scrub', volume: 'vm-1' } }],
    ['plan', { pool: 'tank', action: { kind: 'migrate', volume: 'vm-1', layout: 'raid5', width: 5 } }],
    ['plan', { pool: 'tank', action: { kind: 'add', members: [file('f')] } }],
    ['plan', { pool: 'tank', action: { kind: 'remove', member: '1a2b' } }],
    ['plan', { pool: 'tank', action: { kind: 'spare', member: file('s') } }],
    ['plan', { pool: 'tank', action: { kind: 'migrate', volume: 'vm-1', layout: 'raid6' } }],
    ['plan', { pool: 'tank', action: { kind: 'rebalance' } }],
    ['plan', { pool: 'tank', action: { kind: 'rebuild' } }],
    ['plan', { pool: 'tank', action: { kind: 'rebuild', spare: '5f' } }],
    ['job-start', { pool: 'tank', action: { kind: 'rebuild' } }],
    ['job-list', {}],
    ['job-list', { pool: 'tank' }],
    ['job-pause', { id: 'job-12' }],
    ['job-resume', { id: 'job-12' }],
    ['job-cancel', { id: 'job-12' }],
  ])('accepts %s %j', (method, p) => {
    expect(params(method, p)).toMatchObject({ ok: true, method, params: p });
  });

  it.each([
    ['drives-list', { all: true }, /all: unknown parameter/],
    ['pool-add-member', { pool: 'tank', members: [] }, /members: members must name at least 1 member/],
    ['pool-add-member', { pool: 'tank', members: ['sdb'] }, /members\.0: a member must be/],
    ['pool-remove-member', { pool: 'tank' }, /member: required/],
    ['pool-set-spare', { pool: 'tank', member: '1a2b' }, /spare: required/],
    ['pool-set-policy', { pool: 'tank', policy: { latencyBudget: 11 } }, /policy\.latencyBudget: latencyBudget must be at most 10/],
    ['pool-set-policy', { pool: 'tank', policy: { latencyBudget: 1 } }, /policy\.latencyBudget: latencyBudget must be at least 1\.1/],
    ['pool-set-policy', { pool: 'tank', policy: { autoRepair: 'yes' } }, /policy\.autoRepair: autoRepair must be true or false/],
    ['pool-set-policy', { pool: 'tank', policy: { scrubIntervalHours: 24 } }, /policy\.scrubIntervalHours: unknown parameter/],
    ['pool-set-policy', { pool: 'tank', policy: { colour: 'red' } }, /policy\.colour: unknown parameter/],
    ['plan', { pool: 'tank' }, /action: required/],
    ['plan', { pool: 'tank', action: { kind: 'defrag' } }, /action\.kind must be one of add, remove, spare, migrate, rebalance, rebuild, scrub/],
    ['plan', { pool: 'tank', action: { kind: 'scrub', volume: '../v' } }, /action\.volume: volume must be letters/],
    ['plan', { pool: 'tank', action: { kind: 'migrate', volume: 'v', layout: 'raid7' } }, /layout must be one of/],
    ['plan', { pool: 'tank', action: { kind: 'rebalance', now: true } }, /action\.now: unknown parameter/],
    ['job-start', { pool: 'tank', action: { kind: 'add', members: [] } }, /members must name at least 1 member/],
    ['job-pause', {}, /id: required/],
    ['job-cancel', { id: 'job 1; rm' }, /id: id must be a job id/],
  ])('refuses %s %j with a message naming the field', (method, p, message) => {
    const result = params(method, p);
    expect(result).toMatchObject({ ok: false, error: { code: 'INVALID_PARAMS' } });
    if (!result.ok) expect(result.error.message).toMatch(message);
  });
});
