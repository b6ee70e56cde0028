/**
 * raid0: plain striping. Row r holds `width` data units, unit k on column k,
 * the same in every row, so logical order walks the columns left to right.
 * Width 1 is the single-member passthrough (a chunk that is one slab).
 * No copies, no parity: any member lost loses data (fault tolerance 0).
 */
import type { Layout, LayoutSpec, RowMap } from './layout.js';

/** Widest default stripe: past this, one request fans out to too many members to win anything. */
const DEFAULT_WIDTH_CAP = 16;

const rowsByWidth = new Map<number, RowMap>();

export const raid0: Layout = {
  name: 'raid0',
  description: 'striped, no redundancy',
  minWidth: () => 1,
  defaultWidth: (members) => Math.max(1, Math.min(members, DEFAULT_WIDTH_CAP)),
  validate(spec: LayoutSpec) {
    if (spec.name !== 'raid0') return `not a raid0 spec: ${spec.name}`;
    if (!Number.isSafeInteger(spec.width) || spec.width < 1) {
      return `raid0 needs a width of at least 1 member, got ${spec.width}`;
    }
    if (spec.copies !== 1) return `raid0 keeps one copy of each unit, got copies = ${spec.copies}`;
    return undefined;
  },
  faultTolerance: () => 0,
  dataUnits: (spec) => spec.width,
  row(spec) {
    // Every row is the same; share one frozen map per width instead of allocating per request.
    let map = rowsByWidth.get(spec.width);
    if (!map) {
      map = Object.freeze({ data: Object.freeze(Array.from({ length: spec.width }, (_, k) => Object.freeze([k]))) });
      rowsByWidth.set(spec.width, map);
    }
    return map;
  },
};
