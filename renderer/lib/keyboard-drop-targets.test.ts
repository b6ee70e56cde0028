import { describe, expect, it } from 'vitest';
import { coordinatesOver, nextDropTarget, type Rect } from './keyboard-drop-targets';

const rect = (left: number, top: number, width = 100, height = 50): Rect => ({ left, top, width, height });

// A column of pools, a "New pool" box to their right, and the Unassigned zone far below.
const targets: [string, Rect][] = [
  ['pool:a', rect(0, 0, 400, 200)],
  ['pool:b', rect(0, 220, 400, 200)],
  ['new-pool', rect(420, 0, 200, 100)],
  ['unassigned', rect(0, 3000, 600, 120)],
];

describe('nextDropTarget', () => {
  it('steps down the column one target per press, however far the next one is', () => {
    const drive = rect(150, 80);
    expect(nextDropTarget(drive, 'down', targets, 'pool:a')).toBe('pool:b');
    expect(nextDropTarget(rect(150, 295), 'down', targets, 'pool:b')).toBe('unassigned');
  });

  it('goes sideways and back up', () => {
    expect(nextDropTarget(rect(150, 75), 'right', targets, 'pool:a')).toBe('new-pool');
    expect(nextDropTarget(rect(150, 295), 'up', targets, 'pool:b')).toBe('pool:a');
  });

  it('never returns the target the drive is already over, and nothing past the edge', () => {
    expect(nextDropTarget(rect(250, 3035), 'down', targets, 'unassigned')).toBeUndefined();
    expect(nextDropTarget(rect(150, 75), 'left', targets, 'pool:a')).toBeUndefined();
  });

  it('prefers what is straight ahead over what is as far but off to the side', () => {
    const row: [string, Rect][] = [['below', rect(0, 300)], ['aside', rect(250, 200)]];
    expect(nextDropTarget(rect(0, 0), 'down', row)).toBe('below');
  });
});

describe('coordinatesOver', () => {
  it('centres the dragged drive on the target', () => {
    expect(coordinatesOver(rect(0, 0, 100, 50), rect(0, 3000, 600, 120))).toEqual({ x: 250, y: 3035 });
  });
});
