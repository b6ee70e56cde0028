/**
 * raid6: striping with two rotating parity units per row, P (XOR) and Q
 * (Reed–Solomon, Σ g^k·D_k over GF(2^8), see parity.ts), left-symmetric as
 * Linux md lays out a raid6 created with the default layout:
 *
 *     P column          p = (w - 1) - (r mod w)
 *     Q column          q = (p + 1) mod w
 *     data unit k       column (p + 2 + k) mod w,   k = 0 … w-3
 *
 * Q's coefficient for data unit k is g^k, k counted in logical order (md's
 * "slot" order), whatever column the unit sits on. Width 5 (columns 0..4):
 *
 *     row 0:  Q  D0 D1 D2 P      (Q wraps to column 0 while P is last)
 *     row 1:  D0 D1 D2 P  Q
 *     row 2:  D1 D2 P  Q  D0
 *     row 3:  D2 P  Q  D0 D1
 *     row 4:  P  Q  D0 D1 D2     (row 5 is row 0 again)
 *
 * Any two members may fail. At most 255 data units per row, because g^k must
 * be distinct for every k for two erasures to be solvable.
 */
import { periodicRows, type Layout, type LayoutSpec, type RowMap } from './layout.js';

const MIN_WIDTH = 4;
/** g = 2 has order 255 in GF(2^8): 255 data units + P + Q. */
const MAX_WIDTH = 257;
/** Default stripe cap: 8 data + P + Q, the usual raid6 sweet spot between overhead and rebuild width. */
const DEFAULT_WIDTH_CAP = 10;

function buildPeriod(width: number): readonly RowMap[] {
  const rows: RowMap[] = [];
  for (let r = 0; r < width; r++) {
    const p = width - 1 - r;
    const q = (p + 1) % width;
    const data = Array.from({ length: width - 2 }, (_, k) => Object.freeze([(p + 2 + k) % width]));
    rows.push(Object.freeze({ data: Object.freeze(data), p, q }));
  }
  return Object.freeze(rows);
}

export const raid6: Layout = {
  name: 'raid6',
  description: 'striped with two rotating parities (P and Q)',
  minWidth: () => MIN_WIDTH,
  defaultWidth: (members) => Math.max(MIN_WIDTH, Math.min(members, DEFAULT_WIDTH_CAP)),
  validate(spec: LayoutSpec) {
    if (spec.name !== 'raid6') return `not a raid6 spec: ${spec.name}`;
    if (!Number.isSafeInteger(spec.width) || spec.width < MIN_WIDTH || spec.width > MAX_WIDTH) {
      return `raid6 needs a width of ${MIN_WIDTH} to ${MAX_WIDTH} members, got ${spec.width}`;
    }
    if (spec.copies !== 1) return `raid6 keeps one copy of each unit (parity protects it), got copies = ${spec.copies}`;
    return undefined;
  },
  faultTolerance: () => 2,
  dataUnits: (spec) => spec.width - 2,
  row: periodicRows(buildPeriod),
};
