import { describe, expect, it } from 'vitest';
import { formatSize, parseSize, SizeSyntaxError } from './units.js';

describe('parseSize', () => {
  it.each([
    ['512', 512],
    ['64K', 65536],
    ['64k', 65536],
    ['256M', 256 * 1024 ** 2],
    ['1.5G', 1.5 * 1024 ** 3],
    ['2T', 2 * 1024 ** 4],
    ['4GiB', 4 * 1024 ** 3],
    ['10MB', 10 * 1024 ** 2],
    [' 7 ', 7],
  ])('reads %s', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', 'G', '-1', '1.5', '1X', '1e9', '99999999999P', '0.3K'])('refuses %j with a reason', (text) => {
    expect(() => parseSize(text)).toThrow(SizeSyntaxError);
    expect(() => parseSize(text)).toThrow(/invalid size/);
  });
});

describe('formatSize', () => {
  it('uses binary units', () => {
    expect(formatSize(512)).toBe('512 B');
    expect(formatSize(1536)).toBe('1.5 KiB');
    expect(formatSize(256 * 1024 ** 2)).toBe('256 MiB');
    expect(formatSize(16 * 1024 ** 4)).toBe('16 TiB');
    expect(formatSize(1020 * 1024)).toBe('1020 KiB');
    expect(formatSize(100 * 1024 ** 2)).toBe('100 MiB');
  });
});
