/**
 * Drive health from smartmontools' JSON (`smartctl -j -a DEVICE`), never from
 * its text output.
 *
 * smartctl's exit status is a bit mask (smartctl(8), "RETURN VALUES"): bits 0
 * and 1 mean the command line was bad or the device could not be opened, bit 2
 * that a SMART command failed, bit 3 "disk failing", bits 4–7 prefail
 * attributes at or past threshold (now / in the past), errors in the error log
 * and in the self-test log. A non-zero status is therefore normal for a
 * worn drive, and the JSON is read whatever the status.
 *
 * The verdict is the drive's own (`smart_status.passed`); warnings add what a
 * person replacing disks wants to see even while the drive still claims to
 * pass: reallocated, pending and uncorrectable sectors, failing attributes,
 * NVMe critical warnings and media errors, a failed self-test.
 */
import { execFile } from 'node:child_process';

export type SmartVerdict = 'passed' | 'failed' | 'unknown';

export interface SelfTest {
  readonly type: string;
  readonly passed: boolean;
  readonly status: string;
  readonly lifetimeHours: number | null;
}

export interface SmartReport {
  /** SMART data was read. False for loop devices, virtual disks, devices smartctl cannot open. */
  readonly available: boolean;
  /** Why there is no SMART data, in smartctl's words. */
  readonly reason: string | null;
  readonly protocol: 'ATA' | 'NVMe' | 'SCSI' | null;
  readonly model: string | null;
  readonly serial: string | null;
  readonly verdict: SmartVerdict;
  readonly temperatureC: number | null;
  readonly powerOnHours: number | null;
  /** ATA attribute 5. */
  readonly reallocatedSectors: number | null;
  /** ATA attribute 197. */
  readonly pendingSectors: number | null;
  /** ATA attribute 198; NVMe media and data integrity errors. */
  readonly uncorrectableErrors: number | null;
  /** Newest first, as the drive keeps them. */
  readonly selfTests: readonly SelfTest[];
  /** One line each, for people. */
  readonly warnings: readonly string[];
}

export class SmartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SmartError';
  }
}

interface AtaAttribute {
  id?: number;
  name?: string;
  when_failed?: string;
  raw?: { value?: number };
}

interface SmartctlJson {
  smartctl?: { exit_status?: number; messages?: Array<{ string?: string; severity?: string }> };
  device?: { protocol?: string };
  model_name?: string;
  serial_number?: string;
  smart_status?: { passed?: boolean };
  temperature?: { current?: number };
  power_on_time?: { hours?: number };
  ata_smart_attributes?: { table?: AtaAttribute[] };
  ata_smart_self_test_log?: {
    standard?: { table?: Array<{ type?: { string?: string }; status?: { string?: string; passed?: boolean }; lifetime_hours?: number }> };
  };
  nvme_smart_health_information_log?: {
    critical_warning?: number;
    temperature?: number;
    power_on_hours?: number;
    media_errors?: number;
    available_spare?: number;
    available_spare_threshold?: number;
    percentage_used?: number;
  };
  nvme_self_test_log?: {
    table?: Array<{ self_test_code?: { string?: string }; self_test_result?: { value?: number; string?: string }; power_on_hours?: number }>;
  };
}

/** Exit-status bits that mean smartctl read nothing from the device. */
const NO_DATA_BITS = 0b11;

/** NVMe critical warning bits (NVMe base spec, SMART / Health log byte 0). */
const NVME_CRITICAL_WARNINGS: ReadonlyArray<[number, string]> = [
  [0x01, 'available spare below threshold'],
  [0x02, 'temperature outside its limits'],
  [0x04, 'reliability degraded by media or internal errors'],
  [0x08, 'media placed in read-only mode'],
  [0x10, 'volatile memory backup failed'],
  [0x20, 'persistent memory region unreliable'],
];

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function attribute(table: readonly AtaAttribute[], id: number): number | null {
  return num(table.find((a) => a.id === id)?.raw?.value);
}

function protocolOf(value: string | undefined): SmartReport['protocol'] {
  return value === 'ATA' || value === 'NVMe' || value === 'SCSI' ? value : null;
}

function unavailable(data: SmartctlJson, reason: string): SmartReport {
  return {
    available: false,
    reason,
    protocol: protocolOf(data.device?.protocol),
    model: data.model_name ?? null,
    serial: data.serial_number ?? null,
    verdict: 'unknown',
    temperatureC: null,
    powerOnHours: null,
    reallocatedSectors: null,
    pendingSectors: null,
    uncorrectableErrors: null,
    selfTests: [],
    warnings: [],
  };
}

function selfTestsOf(data: SmartctlJson): SelfTest[] {
  const ata = data.ata_smart_self_test_log?.standard?.table;
  if (ata) {
    return ata.map((t) => ({
      type: t.type?.string ?? 'unknown',
      passed: t.status?.passed === true,
      status: t.status?.string ?? 'unknown',
      lifetimeHours: num(t.lifetime_hours),
    }));
  }
  return (data.nvme_self_test_log?.table ?? []).map((t) => ({
    type: t.self_test_code?.string ?? 'unknown',
    // NVMe result 0 is "completed without error"; 1–2 are aborted by request/reset (not a fault).
    passed: (t.self_test_result?.value ?? 0xf) <= 2,
    status: t.self_test_result?.string ?? 'unknown',
    lifetimeHours: num(t.power_on_hours),
  }));
}

/** Parses `smartctl -j` output (any of -a, -x, -H -A). Throws SmartError only when the text is not smartctl JSON. */
export function parseSmartctl(json: string): SmartReport {
  let data: SmartctlJson;
  try {
    data = JSON.parse(json) as SmartctlJson;
  } catch {
    throw new SmartError('smartctl did not print JSON (smartmontools 7.0 or newer is needed for -j)');
  }
  if (typeof data !== 'object' || data === null || typeof data.smartctl !== 'object') {
    throw new SmartError('not smartctl JSON: no "smartctl" section');
  }
  const exit = num(data.smartctl.exit_status) ?? 0;
  const errors = (data.smartctl.messages ?? []).filter((m) => m.severity === 'error').map((m) => m.string ?? '');
  if ((exit & NO_DATA_BITS) !== 0 || data.smart_status === undefined) {
    return unavailable(data, errors.join('; ') || 'the device reports no SMART data');
  }

  const table = data.ata_smart_attributes?.table ?? [];
  const nvme = data.nvme_smart_health_information_log;
  const reallocatedSectors = attribute(table, 5);
  const pendingSectors = attribute(table, 197);
  const uncorrectableErrors = nvme ? num(nvme.media_errors) : attribute(table, 198);
  const selfTests = selfTestsOf(data);
  const verdict: SmartVerdict = data.smart_status.passed === true ? 'passed' : data.smart_status.passed === false ? 'failed' : 'unknown';

  const warnings: string[] = [];
  if (verdict === 'failed') warnings.push('the drive reports that it is failing (SMART overall health: FAILED)');
  if (reallocatedSectors) warnings.push(`${reallocatedSectors} reallocated sectors`);
  if (pendingSectors) warnings.push(`${pendingSectors} sectors pending reallocation`);
  if (uncorrectableErrors) warnings.push(nvme ? `${uncorrectableErrors} media errors` : `${uncorrectableErrors} offline uncorrectable sectors`);
  for (const a of table) {
    if (a.when_failed === 'now') warnings.push(`attribute ${a.id} ${a.name ?? ''} is at or below its failure threshold`.replace('  ', ' '));
  }
  const critical = num(nvme?.critical_warning) ?? 0;
  for (const [bit, what] of NVME_CRITICAL_WARNINGS) if (critical & bit) warnings.push(`NVMe critical warning: ${what}`);
  const latest = selfTests[0];
  if (latest && !latest.passed) warnings.push(`the latest self-test (${latest.type}) did not pass: ${latest.status}`);

  return {
    available: true,
    reason: null,
    protocol: protocolOf(data.device?.protocol),
    model: data.model_name ?? null,
    serial: data.serial_number ?? null,
    verdict,
    temperatureC: num(data.temperature?.current) ?? num(nvme?.temperature),
    powerOnHours: num(data.power_on_time?.hours) ?? num(nvme?.power_on_hours),
    reallocatedSectors,
    pendingSectors,
    uncorrectableErrors,
    selfTests,
    warnings,
  };
}

/** Runs `smartctl -j -a PATH` and parses it; a missing smartctl is a SmartError with the package to install. */
export function readSmart(path: string): Promise<SmartReport> {
  return new Promise((resolve, reject) => {
    execFile('smartctl', ['-j', '-a', path], { timeout: 60_000, maxBuffer: 8 * 1024 * 1024 }, (error, stdout) => {
      const code = (error as NodeJS.ErrnoException | null)?.code;
      if (code === 'ENOENT') return reject(new SmartError('smartctl is not installed (Debian package smartmontools)'));
      if (error && typeof code !== 'number' && stdout.trim() === '') return reject(new SmartError(`smartctl ${path}: ${error.message}`));
      try {
        resolve(parseSmartctl(stdout));
      } catch (e) {
        reject(e);
      }
    });
  });
}
