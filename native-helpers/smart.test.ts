import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { listDisks } from './disk-inventory.js';
import { parseSmartctl, readSmart, SmartError } from './smart.js';

// Real smartctl outputs; where each comes from is in fixtures/smartctl/SOURCES.md.
const fixture = (name: string) => readFileSync(new URL(`./fixtures/smartctl/${name}`, import.meta.url), 'utf8');

describe('parseSmartctl on real drives', () => {
  it('a healthy SATA disk: passed, temperature, hours, zero bad sectors, its self-test log', () => {
    const r = parseSmartctl(fixture('sata-healthy-wdc-wd140edfz.json'));
    expect(r).toMatchObject({
      available: true,
      protocol: 'ATA',
      model: 'WDC WD140EDFZ-11A0VA0',
      verdict: 'passed',
      temperatureC: 32,
      powerOnHours: 1730,
      reallocatedSectors: 0,
      pendingSectors: 0,
      uncorrectableErrors: 0,
      warnings: [],
    });
    expect(r.selfTests).toHaveLength(21);
    expect(r.selfTests[0]).toEqual({ type: 'Short offline', passed: true, status: 'Completed without error', lifetimeHours: 1708 });
    expect(r.selfTests.every((t) => t.passed)).toBe(true);
  });

  it('a failing SATA disk: FAILED verdict, reallocated and pending sectors, the failed self-tests', () => {
    const r = parseSmartctl(fixture('sata-failing-hitachi-hds721050dle630.json'));
    expect(r).toMatchObject({
      available: true,
      verdict: 'failed',
      model: 'Hitachi HDS721050DLE630',
      temperatureC: 25,
      powerOnHours: 65592,
      reallocatedSectors: 1975,
      pendingSectors: 8,
      uncorrectableErrors: 0,
    });
    expect(r.warnings).toEqual(expect.arrayContaining([
      'the drive reports that it is failing (SMART overall health: FAILED)',
      '1975 reallocated sectors',
      '8 sectors pending reallocation',
      'attribute 5 Reallocated_Sector_Ct is at or below its failure threshold',
    ]));
    const failed = r.selfTests.filter((t) => !t.passed);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]).toMatchObject({ type: 'Extended offline', status: 'Completed: read failure' });
  });

  it('a healthy NVMe drive: health log temperature, hours and media errors', () => {
    const r = parseSmartctl(fixture('nvme-healthy-intel-ssdpeknw010t8.json'));
    expect(r).toMatchObject({
      available: true,
      protocol: 'NVMe',
      verdict: 'passed',
      temperatureC: 36,
      powerOnHours: 2401,
      uncorrectableErrors: 0,
      reallocatedSectors: null,
      pendingSectors: null,
      warnings: [],
    });
  });

  it('a failing NVMe drive: the critical warning bit is named', () => {
    const r = parseSmartctl(fixture('nvme-failing-samsung-mzwll3t2hajq.json'));
    expect(r.verdict).toBe('failed');
    expect(r.powerOnHours).toBe(18376);
    expect(r.warnings).toContain('NVMe critical warning: volatile memory backup failed');
  });

  it.each(['no-smart-loop-device.json', 'no-smart-virtio-disk.json'])('no SMART (%s): unavailable with smartctl\'s reason, no verdict', (name) => {
    const r = parseSmartctl(fixture(name));
    expect(r.available).toBe(false);
    expect(r.verdict).toBe('unknown');
    expect(r.reason).toMatch(/Unable to detect device type/);
    expect(r.warnings).toEqual([]);
  });

  it.each([
    ['text output', 'smartctl 7.3 2022-02-28 r5338'],
    ['JSON that is not smartctl\'s', '{"blockdevices":[]}'],
  ])('refuses %s with a SmartError', (_what, input) => {
    expect(() => parseSmartctl(input)).toThrow(SmartError);
  });
});

describe('readSmart on this machine', () => {
  it('reads every whole disk through the real smartctl, each either with a verdict or plainly without SMART', async (ctx) => {
    try {
      execFileSync('smartctl', ['--version']);
    } catch {
      return ctx.skip('smartctl is not installed (Debian package smartmontools)');
    }
    const disks = (await listDisks()).filter((d) => d.type === 'disk' && d.size > 0);
    expect(disks.length).toBeGreaterThan(0);
    for (const d of disks) {
      const r = await readSmart(d.path);
      if (r.available) expect(['passed', 'failed', 'unknown']).toContain(r.verdict);
      else expect(r.reason).toMatch(/\S/);
      console.log(`${d.path}: ${r.available ? `SMART ${r.verdict}, ${r.temperatureC ?? '?'} °C` : `no SMART (${r.reason})`}`);
    }
  });
});
