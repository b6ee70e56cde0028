/**
 * Turns one pool's engine events into the contract's events (preload/api.ts),
 * named by pool, with member error counters throttled per member: a disk that
 * returns thousands of errors a second must not flood every client.
 */
import type { Member } from '../engine/member.js';
import type { Pool } from '../engine/pool.js';
import type { Events, EventName, VolumeState } from '../../preload/api.js';
import type { KeyedThrottle } from './keyed-throttle.js';
import { memberStatus } from './pool-views.js';

export type PoolEventName = Exclude<EventName, 'engine-status'>;
export type PoolEventListener = <E extends PoolEventName>(event: E, data: Events[E]) => void;

/** Subscribes; returns the function that unsubscribes. */
export function forwardPoolEvents(
  pool: Pool,
  emit: PoolEventListener,
  errorEvents: KeyedThrottle<Events['member-errors']>,
  log: (line: string) => void,
): () => void {
  const name = pool.name;
  const onMemberState = (member: Member): void => emit('member-state', { pool: name, member: memberStatus(pool, member) });
  const onMemberErrors = (member: Member): void =>
    errorEvents.push(`${name}/${member.uuid}`, { pool: name, member: member.uuid, errors: { ...member.errors } });
  const onVolumeState = (volume: string, state: VolumeState): void => emit('volume-state', { pool: name, volume, state });
  const onLog = (level: Events['log']['level'], message: string): void => {
    log(`pool ${name}: ${message}`);
    emit('log', { level, message, pool: name });
  };
  pool.on('member-state', onMemberState);
  pool.on('member-errors', onMemberErrors);
  pool.on('volume-state', onVolumeState);
  pool.on('log', onLog);
  return () => {
    pool.off('member-state', onMemberState);
    pool.off('member-errors', onMemberErrors);
    pool.off('volume-state', onVolumeState);
    pool.off('log', onLog);
  };
}
