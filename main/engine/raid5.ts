/**
 * raid5: striping with one rotating parity unit per row, left-symmetric
 * (Linux md's default, ALGORITHM_LEFT_SYMMETRIC). For width w, row r:
 *
 *     P column          p = (w - 1) - (r mod w)
 *     data unit k       column (p + 1 + k) mod w,   k = 0 … w-2
 *
 * P walks from the last column to the first, one step per row, and the data
 * starts just after P and wraps around, so consecutive data units (also from
 * one row to the next) fall on consecutive columns. Width 4 (columns 0..3):
 *
 *     row 0:  D0 D1 D2 P
 *     row 1:  D1 D2 P  D0
 *     row 2:  D2 P  D0 D1
 *     row 3:  P  D0 D1 D2     (row 4 is row 0 again)
 *
 * P is the XOR of the row's data units (parity.ts). Any one member may fail.
 * The pattern repeats every w rows, so rows are built once per width.
 */
import { periodicRows, type Layout, type LayoutSpec, type RowMap } from './layout.js';

const MIN_WIDTH = 3;
/** Default stripe cap: 7 data + P keeps a read-modify-write touching few members and rebuilds short. */
const DEFAULT_WIDTH_CAP = 8;

function buildPeriod(width: number): readonly RowMap[] {
  const rows: RowMap[] = [];
  for (let r = 0; r < width; r++) {
    const p = width - 1 - r;
    const data = Array.from({ length: width - 1 }, (_, k) => Object.freeze([(p + 1 + k) % width]));
    rows.push(Object.freeze({ data: Object.freeze(data), p }));
  }
  return Object.freeze(rows);
}

export const raid5: Layout = {
  name: 'raid5',
  description: 'striped with one rotating parity',
  minWidth: () => MIN_WIDTH,
  defaultWidth: (members) => Math.max(MIN_WIDTH, Math.min(members, DEFAULT_WIDTH_CAP)),
  validate(spec: LayoutSpec) {
    if (spec.name !== 'raid5') return `not a raid5 spec: ${spec.name}`;
    if (!Number.isSafeInteger(spec.width) || spec.width < MIN_WIDTH) {
      return `raid5 needs a width of at least ${MIN_WIDTH} members, got ${spec.width}`;
    }
    if (spec.copies !== 1) return `raid5 keeps one copy of each unit (parity protects it), got copies = ${spec.copies}`;
    return undefined;
  },
  faultTolerance: () => 1,
  dataUnits: (spec) => spec.width - 1,
  row: periodicRows(buildPeriod),
};
