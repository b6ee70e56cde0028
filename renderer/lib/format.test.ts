import { describe, expect, it } from 'vitest';
import { driveLabel, withDriveLabels } from './drive-label';
import { formatBytes, formatDuration, formatPercent, formatRate } from './format';

describe('format', () => {
  it('sizes in binary units with three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(256 * 1024 ** 2)).toBe('256 MiB');
    expect(formatBytes(12.5 * 1024 ** 3)).toBe('12.5 GiB');
    expect(formatBytes(-1)).toBe('—');
    expect(formatRate(3 * 1024 ** 2)).toBe('3.00 MiB/s');
  });

  it('durations with padded minutes and seconds, and a dash when unknown', () => {
    expect(formatDuration(42)).toBe('42 s');
    expect(formatDuration(185)).toBe('3 min 05 s');
    expect(formatDuration(2 * 3600 + 7 * 60)).toBe('2 h 07 min');
    expect(formatDuration(3 * 86400 + 5 * 3600)).toBe('3 d 5 h');
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('—');
  });

  it('percentages capped at 100', () => {
    expect(formatPercent(1, 3)).toBe('33.3 %');
    expect(formatPercent(5, 4)).toBe('100.0 %');
    expect(formatPercent(0, 0)).toBe('—');
  });
});

describe('driveLabel', () => {
  it('names files by their base name and NBD drives by export and host', () => {
    expect(driveLabel('file:/var/lib/spindle/demo/disk3.img')).toBe('disk3.img');
    expect(driveLabel('nbd://10.0.0.2:10809/sdb')).toBe('sdb on 10.0.0.2:10809');
    expect(driveLabel('nbd+unix:///disk1?socket=/run/helper.sock')).toBe('disk1');
    expect(driveLabel('nbd+unix:///?socket=/tmp/x/m2.sock')).toBe('m2.sock');
  });
});

describe('shortAddress', () => {
  it('keeps the export name and shortens a deep socket path', async () => {
    const { shortAddress } = await import('./short-address');
    expect(shortAddress('nbd+unix:///demo/photos?socket=/tmp/spindle-e2e-x/run/nbd.sock')).toBe('nbd+unix:///demo/photos?socket=…/run/nbd.sock');
    expect(shortAddress('nbd+unix:///v?socket=/run/n.sock')).toBe('nbd+unix:///v?socket=/run/n.sock');
    expect(shortAddress('nbd://127.0.0.1:10809/demo/photos')).toBe('nbd://127.0.0.1:10809/demo/photos');
  });
});

describe('withDriveLabels', () => {
  it('shortens every member URI in an engine message', () => {
    expect(withDriveLabels('member nbd+unix:///disk2?socket=/run/x/demo-disks.sock is failed; member file:/s/demo/disk3.img is missing.')).toBe(
      'member disk2 is failed; member disk3.img is missing.',
    );
    expect(withDriveLabels('volume photos has failed')).toBe('volume photos has failed');
  });
});
