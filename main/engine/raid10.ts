/**
 * raid10: striped mirrors. With n copies and width w (a multiple of n, at
 * least 2n), a row holds g = w / n data units, and data unit k lives on the n
 * columns
 *
 *     k, k + g, k + 2g, …, k + (n-1)·g
 *
 * (md's "offset"-like interleave rather than its "near" adjacent pairs). So:
 * - every column holds exactly one thing per row (the sets partition 0..w-1);
 * - consecutive data units, also across a row boundary (unit g-1 of row r,
 *   unit 0 of row r+1), sit on disjoint member sets, because g ≥ 2;
 * - a sequential read that takes copy j of each unit lands on g distinct
 *   members, and alternating j by row spreads it over all w members.
 * The grouping does not rotate by row: a mirror set is a fixed set of n
 * members, so the chunk survives any failures that leave one member of each
 * set, and always survives copies-1 failures (fault tolerance copies-1).
 */
import type { Layout, LayoutSpec, RowMap } from './layout.js';

const MIN_COPIES = 2;
/** Same ceiling as raid1: more copies than this is not a layout anyone needs. */
const MAX_COPIES = 6;
/** Widest default stripe, as for raid0. */
const DEFAULT_WIDTH_CAP = 16;

const rowsBySpec = new Map<string, RowMap>();

export const raid10: Layout = {
  name: 'raid10',
  description: 'striped mirrors, n copies',
  minWidth: (copies) => 2 * copies,
  defaultWidth(members, copies) {
    const fit = Math.floor(Math.min(members, DEFAULT_WIDTH_CAP) / copies) * copies;
    return Math.max(fit, 2 * copies);
  },
  validate(spec: LayoutSpec) {
    if (spec.name !== 'raid10') return `not a raid10 spec: ${spec.name}`;
    if (!Number.isSafeInteger(spec.copies) || spec.copies < MIN_COPIES || spec.copies > MAX_COPIES) {
      return `raid10 keeps ${MIN_COPIES} to ${MAX_COPIES} copies, got copies = ${spec.copies}`;
    }
    if (!Number.isSafeInteger(spec.width) || spec.width < 2 * spec.copies || spec.width % spec.copies !== 0) {
      return `raid10 with ${spec.copies} copies needs a width that is a multiple of ${spec.copies} and at least ${2 * spec.copies}, got ${spec.width}`;
    }
    return undefined;
  },
  faultTolerance: (spec) => spec.copies - 1,
  dataUnits: (spec) => spec.width / spec.copies,
  row(spec) {
    const key = `${spec.width}/${spec.copies}`;
    let map = rowsBySpec.get(key);
    if (!map) {
      const groups = spec.width / spec.copies;
      const data = Array.from({ length: groups }, (_, k) =>
        Object.freeze(Array.from({ length: spec.copies }, (_, j) => k + j * groups)),
      );
      map = Object.freeze({ data: Object.freeze(data) });
      rowsBySpec.set(key, map);
    }
    return map;
  },
};
