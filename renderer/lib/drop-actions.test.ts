import { describe, expect, it } from 'vitest';
import { dropOutcome, moveTargets, type DragItem } from './drop-actions';

const unassigned: DragItem = { uri: 'file:/img/disk6.img', label: 'disk6.img', pool: null, memberUuid: null, role: null };
const member: DragItem = { uri: 'file:/img/disk1.img', label: 'disk1.img', pool: 'demo', memberUuid: 'aa11', role: 'data' };

describe('dropOutcome', () => {
  it('an unassigned drive dropped on a pool is a plan to add it', () => {
    expect(dropOutcome(unassigned, { kind: 'pool', pool: 'demo' })).toEqual({
      kind: 'plan',
      pool: 'demo',
      action: { kind: 'add', members: ['file:/img/disk6.img'] },
      title: 'Add disk6.img to pool demo',
    });
  });
  it('on a spare slot, a plan to make it the spare (by URI, or by uuid for a member of that pool)', () => {
    expect(dropOutcome(unassigned, { kind: 'spare', pool: 'demo' })).toMatchObject({ kind: 'plan', action: { kind: 'spare', member: 'file:/img/disk6.img' } });
    expect(dropOutcome(member, { kind: 'spare', pool: 'demo' })).toMatchObject({ kind: 'plan', action: { kind: 'spare', member: 'aa11' } });
  });
  it('on "New pool", the new-pool form with the drive in it', () => {
    expect(dropOutcome(unassigned, { kind: 'new-pool' })).toEqual({ kind: 'new-pool', uris: ['file:/img/disk6.img'] });
  });
  it('a member dragged out of its pool is a plan to evacuate it', () => {
    expect(dropOutcome(member, { kind: 'unassigned' })).toEqual({
      kind: 'plan',
      pool: 'demo',
      action: { kind: 'remove', member: 'aa11' },
      title: 'Evacuate disk1.img and remove it from pool demo',
    });
  });
  it('refuses, saying why, to move a member of one pool into another', () => {
    const outcome = dropOutcome(member, { kind: 'pool', pool: 'tank' });
    expect(outcome).toEqual({ kind: 'refused', reason: 'disk1.img belongs to pool demo; remove it from there before adding it to pool tank.' });
    expect(dropOutcome(member, { kind: 'new-pool' }).kind).toBe('refused');
  });
  it('dropping where it already is does nothing', () => {
    expect(dropOutcome(member, { kind: 'pool', pool: 'demo' })).toEqual({ kind: 'nothing' });
    expect(dropOutcome(unassigned, { kind: 'unassigned' })).toEqual({ kind: 'nothing' });
  });
});

describe('moveTargets (the keyboard alternative)', () => {
  it('offers every drop an unassigned drive can make', () => {
    expect(moveTargets(unassigned, ['demo', 'tank']).map((t) => t.label)).toEqual([
      'Add to pool demo',
      'Add to pool tank',
      'Make it the spare of pool demo',
      'Make it the spare of pool tank',
      'Start a new pool with it',
    ]);
  });
  it('offers a member evacuation and, for data members, becoming the spare', () => {
    expect(moveTargets(member, ['demo']).map((t) => t.label)).toEqual(['Evacuate and remove from pool demo', 'Make it the spare of pool demo']);
    expect(moveTargets({ ...member, role: 'spare' }, ['demo']).map((t) => t.label)).toEqual(['Remove from pool demo']);
  });
});
