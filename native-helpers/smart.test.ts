import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { listDisks } from './disk-inventory.js';
import { parseSmartctl, readSmart, SmartError } from './smart.js';

// The SATA and NVMe fixtures are written for this project in smartctl's -j layout with invented
// drives; the no-SMART ones were recorded on this machine. See fixtures/smartctl/SOURCES.md.
const fixture = (name: string) => readFileSync(new URL(`./fixtures/smartctl/${name}`, import.meta.url), 'utf8');

describe('parseSmartctl on smartctl JSON', () => {
  it('a healthy SATA disk: passed, temperature, hours, zero (not missing) bad-sector counts, its self-test log', () => {
    const r = parseSmartctl(fixture('sata-healthy.json'));
    expect(r).toMatchObject({
      available: true,
      reason: null,
      protocol: 'ATA',
      model: 'SPINDLE-TEST-HDD-4T',
      serial: 'FAKE-HDD-0000-0001',
      verdict: 'passed',
      temperatureC: 34,
      powerOnHours: 9731,
      reallocatedSectors: 0,
      pendingSectors: 0,
      uncorrectableErrors: 0,
      warnings: [],
    });
    expect(r.selfTests).toHaveLength(5);
    expect(r.selfTests[0]).toEqual({ type: 'Short offline', passed: true, status: 'Completed without error', lifetimeHours: 9714 });
    expect(r.selfTests[2]).toEqual({ type: 'Extended offline', passed: true, status: 'Completed without error', lifetimeHours: 9390 });
    expect(r.selfTests.every((t) => t.passed)).toBe(true);
  });

  it('a failing SATA disk: FAILED verdict, reallocated, pending and uncorrectable sectors, the attribute failing now (not the one failed in the past), the failed self-test', () => {
    const r = parseSmartctl(fixture('sata-failing.json'));
    expect(r).toMatchObject({
      available: true,
      protocol: 'ATA',
      verdict: 'failed',
      model: 'SPINDLE-TEST-HDD-2T',
      temperatureC: 41,
      powerOnHours: 38211,
      reallocatedSectors: 1472,
      pendingSectors: 64,
      uncorrectableErrors: 37,
    });
    expect(r.warnings).toEqual([
      'the drive reports that it is failing (SMART overall health: FAILED)',
      '1472 reallocated sectors',
      '64 sectors pending reallocation',
      '37 offline uncorrectable sectors',
      'attribute 5 Reallocated_Sector_Ct is at or below its failure threshold',
      'the latest self-test (Extended offline) did not pass: Completed: read failure',
    ]);
    expect(r.selfTests.map((t) => t.passed)).toEqual([false, false, true, true]);
    expect(r.selfTests[0]).toEqual({ type: 'Extended offline', passed: false, status: 'Completed: read failure', lifetimeHours: 38207 });
  });

  it('a drive that still claims to pass keeps its bad-sector warnings', () => {
    const data = JSON.parse(fixture('sata-failing.json')) as { smart_status: { passed: boolean } };
    data.smart_status.passed = true;
    const r = parseSmartctl(JSON.stringify(data));
    expect(r.verdict).toBe('passed');
    expect(r.warnings).not.toContain('the drive reports that it is failing (SMART overall health: FAILED)');
    expect(r.warnings).toEqual(expect.arrayContaining(['1472 reallocated sectors', '64 sectors pending reallocation', '37 offline uncorrectable sectors']));
  });

  it('a healthy NVMe drive: health log temperature, hours and media errors; a self-test aborted by a controller reset is no fault', () => {
    const r = parseSmartctl(fixture('nvme-healthy.json'));
    expect(r).toMatchObject({
      available: true,
      protocol: 'NVMe',
      model: 'SPINDLE-TEST-NVME-1T',
      serial: 'FAKE-NVME-0000-0003',
      verdict: 'passed',
      temperatureC: 38,
      powerOnHours: 4186,
      uncorrectableErrors: 0,
      reallocatedSectors: null,
      pendingSectors: null,
      warnings: [],
    });
    expect(r.selfTests).toEqual([
      { type: 'Short', passed: true, status: 'Completed without error', lifetimeHours: 4180 },
      { type: 'Extended', passed: true, status: 'Aborted: Controller Reset', lifetimeHours: 3902 },
      { type: 'Short', passed: true, status: 'Completed without error', lifetimeHours: 3899 },
    ]);
  });

  it('a failing NVMe drive: each critical warning bit set is named (and no other), media errors, the failed self-test', () => {
    const r = parseSmartctl(fixture('nvme-failing.json'));
    expect(r).toMatchObject({
      available: true,
      protocol: 'NVMe',
      model: 'SPINDLE-TEST-NVME-2T',
      verdict: 'failed',
      temperatureC: 47,
      powerOnHours: 21876,
      uncorrectableErrors: 318,
      reallocatedSectors: null,
      pendingSectors: null,
    });
    expect(r.warnings).toEqual([
      'the drive reports that it is failing (SMART overall health: FAILED)',
      '318 media errors',
      'NVMe critical warning: available spare below threshold',
      'NVMe critical warning: reliability degraded by media or internal errors',
      'NVMe critical warning: media placed in read-only mode',
      'NVMe critical warning: volatile memory backup failed',
      'the latest self-test (Extended) did not pass: Completed: failed segments',
    ]);
    expect(r.selfTests[0]).toEqual({ type: 'Extended', passed: false, status: 'Completed: failed segments', lifetimeHours: 21870 });
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
