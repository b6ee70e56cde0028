/**
 * A layout says how one chunk's slabs hold user data: which columns (slabs)
 * of each row carry data, which carry copies, which carry parity.
 *
 * Vocabulary (every layout file uses it):
 * - A chunk is `width` slabs on `width` distinct members; column c is the
 *   chunk's c-th slab.
 * - Each slab's data area is cut into units of `STRIPE_UNIT` bytes; row r is
 *   unit r of every column. A row holds `dataUnits(spec)` units of user data,
 *   in logical order, so the chunk's logical byte L lives in row
 *   floor(L / (STRIPE_UNIT × dataUnits)), data unit floor(L / STRIPE_UNIT) mod
 *   dataUnits.
 * - `row(spec, r)` lists, for each data unit of row r, the columns holding a
 *   copy of it (one for striped layouts, n for mirrors), and the columns of
 *   parity P (XOR) and Q (Reed–Solomon over GF(2^8)) when the layout has them.
 *
 * The I/O path (stripe-io.ts) is the same for every layout; a layout is only
 * this table, one file each (raid0.ts, raid1.ts, raid10.ts, raid5.ts,
 * raid6.ts), like nbdkit's plugins or ZFS's vdev_*.c operation tables.
 */

export type LayoutName = 'raid0' | 'raid1' | 'raid10' | 'raid5' | 'raid6';

/** Bytes per stripe unit: large enough for sequential throughput, small enough to balance. */
export const STRIPE_UNIT = 64 * 1024;

export interface LayoutSpec {
  readonly name: LayoutName;
  /** Slabs per chunk (= distinct members per chunk). */
  readonly width: number;
  /** Copies of each data unit, for raid1 and raid10 (default 2); 1 otherwise. */
  readonly copies: number;
}

export interface RowMap {
  /** For each data unit of the row, in logical order: the columns holding a copy of it. */
  readonly data: readonly (readonly number[])[];
  /** Column holding P = XOR of the row's data units, if the layout has parity. */
  readonly p?: number;
  /** Column holding Q = Σ g^i · D_i over GF(2^8), for raid6. */
  readonly q?: number;
}

export interface Layout {
  readonly name: LayoutName;
  /** One line for people: "mirror, n copies", "striped with rotating parity". */
  readonly description: string;
  /** Fewest members a chunk of this layout can span. */
  minWidth(copies: number): number;
  /** The width the engine picks for a pool of `members` members (before free-space limits). */
  defaultWidth(members: number, copies: number): number;
  /** Why this spec cannot exist (wrong width for the layout, bad copy count), or undefined. */
  validate(spec: LayoutSpec): string | undefined;
  /** How many of the chunk's members may fail with every byte still readable. */
  faultTolerance(spec: LayoutSpec): number;
  /** Data units per row. */
  dataUnits(spec: LayoutSpec): number;
  row(spec: LayoutSpec, rowIndex: number): RowMap;
}

/**
 * The `row` function of a rotating-parity layout (raid5, raid6): its rows
 * repeat every `width` rows, so each width's period is built once by
 * `buildPeriod` and looked up after.
 */
export function periodicRows(buildPeriod: (width: number) => readonly RowMap[]): (spec: LayoutSpec, rowIndex: number) => RowMap {
  const periodByWidth = new Map<number, readonly RowMap[]>();
  return (spec, rowIndex) => {
    let period = periodByWidth.get(spec.width);
    if (!period) {
      period = buildPeriod(spec.width);
      periodByWidth.set(spec.width, period);
    }
    return period[rowIndex % spec.width]!;
  };
}
