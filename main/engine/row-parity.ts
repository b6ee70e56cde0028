/**
 * Parity for one row of a parity layout, as chunk-io needs it: compute P
 * (and Q) of the row's data units, or rebuild the lost data units from what
 * survives — checking the rebuild against the spare parity when there is one
 * (raid6 with one unit lost), so a stale parity unit yields "cannot rebuild"
 * rather than wrong bytes.
 */
import { computeP, computeQ, reconstruct, type RowUnit } from './parity.js';

export function computeRowParity(units: readonly Buffer[], withQ: boolean): { p: Buffer; q?: Buffer } {
  const length = units[0]!.length;
  const p = Buffer.alloc(length);
  computeP(units, p);
  if (!withQ) return { p };
  const q = Buffer.alloc(length);
  computeQ(units, q);
  return { p, q };
}

/**
 * All data units of a row, the lost ones (null) rebuilt from `p` / `q`
 * (null when lost too). Undefined when too much is lost, or when the spare
 * parity disagrees with the rebuild.
 */
export function rebuildRow(units: ReadonlyArray<Buffer | null>, p: Buffer | null, q: Buffer | null): Buffer[] | undefined {
  const missing = units.flatMap((u, i) => (u === null ? [i] : []));
  const present = units.find((u): u is Buffer => u !== null) ?? p ?? q;
  if (!present) return undefined;
  const length = present.length;
  if (missing.length === 0) return units as Buffer[];
  const parityCount = (p ? 1 : 0) + (q ? 1 : 0);
  if (missing.length > parityCount) return undefined;
  const data = units.map((u) => u ?? Buffer.alloc(length));
  // One lost unit and both parities: rebuild from P, then check against Q.
  const useQ = q !== null && (missing.length === 2 || p === null);
  try {
    reconstruct({ data, ...(p ? { p } : {}), ...(useQ ? { q: q! } : {}) }, missing as RowUnit[]);
  } catch {
    return undefined;
  }
  if (q && !useQ) {
    const check = Buffer.alloc(length);
    computeQ(data, check);
    if (!check.equals(q)) return undefined;
  }
  return data;
}
