import { describe, expect, it } from 'vitest';
import { formatUptime } from './format-uptime';

describe('formatUptime', () => {
  it.each([
    [0, '0s'],
    [999, '0s'],
    [12_000, '12s'],
    [249_000, '4m 09s'],
    [2 * 3600_000 + 5 * 60_000, '2h 05m'],
    [3 * 86400_000 + 4 * 3600_000, '3d 4h'],
    [-5, '0s'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatUptime(ms)).toBe(text);
  });
});
