/**
 * raid1: n-way mirror. A chunk is `copies` slabs, each a full copy; every row
 * holds one data unit, present on every column: data = [[0, 1, …, n-1]].
 * Any n-1 members may fail (fault tolerance copies-1); the checksums tell a
 * good copy from a bad one, so even two copies can outvote silent corruption.
 */
import type { Layout, LayoutSpec, RowMap } from './layout.js';

/** Fewest copies that make a mirror. */
const MIN_COPIES = 2;
/** Most copies: past 6 the write amplification buys nothing a pool of this size needs. */
const MAX_COPIES = 6;

const rowsByCopies = new Map<number, RowMap>();

export const raid1: Layout = {
  name: 'raid1',
  description: 'mirror, n copies',
  minWidth: (copies) => copies,
  defaultWidth: (_members, copies) => copies,
  validate(spec: LayoutSpec) {
    if (spec.name !== 'raid1') return `not a raid1 spec: ${spec.name}`;
    if (!Number.isSafeInteger(spec.copies) || spec.copies < MIN_COPIES || spec.copies > MAX_COPIES) {
      return `raid1 keeps ${MIN_COPIES} to ${MAX_COPIES} copies, got copies = ${spec.copies}`;
    }
    if (spec.width !== spec.copies) {
      return `raid1 with ${spec.copies} copies spans exactly ${spec.copies} members, got width ${spec.width}`;
    }
    return undefined;
  },
  faultTolerance: (spec) => spec.copies - 1,
  dataUnits: () => 1,
  row(spec) {
    let map = rowsByCopies.get(spec.copies);
    if (!map) {
      map = Object.freeze({ data: Object.freeze([Object.freeze(Array.from({ length: spec.copies }, (_, c) => c))]) });
      rowsByCopies.set(spec.copies, map);
    }
    return map;
  },
};
