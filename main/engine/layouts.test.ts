import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Layout, LayoutName, LayoutSpec, RowMap } from './layout.js';
import { LayoutNameError, layouts, parseLayoutName } from './layouts.js';

/** A valid spec of the named layout, with width and copies drawn over their whole legal range (bounded for speed). */
function validSpec(name: LayoutName): fc.Arbitrary<LayoutSpec> {
  switch (name) {
    case 'raid0':
      return fc.integer({ min: 1, max: 24 }).map((width) => ({ name, width, copies: 1 }));
    case 'raid1':
      return fc.integer({ min: 2, max: 6 }).map((copies) => ({ name, width: copies, copies }));
    case 'raid10':
      return fc
        .record({ copies: fc.integer({ min: 2, max: 6 }), groups: fc.integer({ min: 2, max: 8 }) })
        .map(({ copies, groups }) => ({ name, width: copies * groups, copies }));
    case 'raid5':
      return fc.integer({ min: 3, max: 24 }).map((width) => ({ name, width, copies: 1 }));
    case 'raid6':
      return fc.integer({ min: 4, max: 24 }).map((width) => ({ name, width, copies: 1 }));
  }
}

const names = Object.keys(layouts) as LayoutName[];
const rowIndex = fc.oneof(fc.nat({ max: 1000 }), fc.nat({ max: Number.MAX_SAFE_INTEGER }));
const copiesPerUnit = (spec: LayoutSpec) => (spec.name === 'raid1' || spec.name === 'raid10' ? spec.copies : 1);
const parityCount: Record<LayoutName, number> = { raid0: 0, raid1: 0, raid10: 0, raid5: 1, raid6: 2 };

/** Every column the row puts something in, one entry per thing (so duplicates show a column used twice). */
function usedColumns(row: RowMap): number[] {
  const used = row.data.flat();
  if (row.p !== undefined) used.push(row.p);
  if (row.q !== undefined) used.push(row.q);
  return used;
}

/** Whether every data unit of the row can still be read or rebuilt with the columns in `failed` gone. */
function survives(row: RowMap, failed: ReadonlySet<number>): boolean {
  const lostData = row.data.filter((columns) => columns.every((c) => failed.has(c))).length;
  const parityLeft = [row.p, row.q].filter((c) => c !== undefined && !failed.has(c)).length;
  return lostData <= parityLeft;
}

/** All size-element subsets of 0..width-1. */
function subsets(width: number, size: number): number[][] {
  const out: number[][] = [];
  const pick: number[] = [];
  const walk = (from: number) => {
    if (pick.length === size) return void out.push([...pick]);
    for (let c = from; c <= width - (size - pick.length); c++) {
      pick.push(c);
      walk(c + 1);
      pick.pop();
    }
  };
  walk(0);
  return out;
}

describe.each(names)('%s', (name) => {
  const layout: Layout = layouts[name];

  it('is registered under its own name and accepts its valid specs', () => {
    expect(layout.name).toBe(name);
    fc.assert(fc.property(validSpec(name), (spec) => layout.validate(spec) === undefined));
  });

  it('puts each data unit on the right number of distinct columns, and every column holds exactly one thing per row', () => {
    fc.assert(
      fc.property(validSpec(name), rowIndex, (spec, r) => {
        const row = layout.row(spec, r);
        expect(row.data).toHaveLength(layout.dataUnits(spec));
        for (const columns of row.data) {
          expect(columns).toHaveLength(copiesPerUnit(spec));
          expect(new Set(columns).size).toBe(columns.length);
        }
        expect(row.p !== undefined).toBe(parityCount[name] >= 1);
        expect(row.q !== undefined).toBe(parityCount[name] >= 2);
        const used = usedColumns(row);
        expect([...used].sort((a, b) => a - b)).toEqual(Array.from({ length: spec.width }, (_, c) => c));
        expect(layout.dataUnits(spec) * copiesPerUnit(spec) + parityCount[name]).toBe(spec.width);
      }),
    );
  });

  it('survives exactly faultTolerance(spec) failed members, in every row', () => {
    fc.assert(
      // Width ≤ 12 keeps the enumeration of failure sets small (C(12,6) = 924).
      fc.property(validSpec(name).filter((spec) => spec.width <= 12), rowIndex, (spec, r) => {
        const tolerance = layout.faultTolerance(spec);
        const expected = { raid0: 0, raid1: spec.copies - 1, raid10: spec.copies - 1, raid5: 1, raid6: 2 }[name];
        expect(tolerance).toBe(expected);
        const row = layout.row(spec, r);
        for (const failed of subsets(spec.width, tolerance)) expect(survives(row, new Set(failed))).toBe(true);
        // The claim is tight: some set of one more failure loses data (unless that is more members than the chunk has).
        if (tolerance + 1 <= spec.width) {
          expect(subsets(spec.width, tolerance + 1).some((failed) => !survives(row, new Set(failed)))).toBe(true);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('rotates parity over every column in any width consecutive rows', () => {
    fc.assert(
      fc.property(validSpec(name), fc.nat({ max: 1_000_000 }), (spec, start) => {
        for (const which of ['p', 'q'] as const) {
          const columns = Array.from({ length: spec.width }, (_, i) => layout.row(spec, start + i)[which]);
          if (parityCount[name] < (which === 'p' ? 1 : 2)) {
            expect(columns.every((c) => c === undefined)).toBe(true);
          } else {
            expect(new Set(columns).size).toBe(spec.width);
          }
        }
      }),
    );
  });

  it('gives a default width that validates and fits the pool once the pool is big enough', () => {
    fc.assert(
      fc.property(validSpec(name), fc.integer({ min: 1, max: 40 }), (sample, members) => {
        const copies = sample.copies;
        const width = layout.defaultWidth(members, copies);
        expect(layout.validate({ name, width, copies })).toBeUndefined();
        expect(width).toBeGreaterThanOrEqual(layout.minWidth(copies));
        if (members >= layout.minWidth(copies)) expect(width).toBeLessThanOrEqual(members);
      }),
    );
  });

  it('refuses a spec of another layout', () => {
    const other = names.find((n) => n !== name)!;
    expect(layout.validate({ name: other, width: 6, copies: 2 })).toMatch(new RegExp(`not a ${name} spec`));
  });
});

describe('invalid specs', () => {
  it.each<[LayoutSpec, RegExp]>([
    [{ name: 'raid0', width: 0, copies: 1 }, /raid0 needs a width of at least 1 member, got 0/],
    [{ name: 'raid0', width: 2.5, copies: 1 }, /raid0 needs a width .* got 2.5/],
    [{ name: 'raid0', width: 4, copies: 2 }, /raid0 keeps one copy .* copies = 2/],
    [{ name: 'raid1', width: 2, copies: 1 }, /raid1 keeps 2 to 6 copies, got copies = 1/],
    [{ name: 'raid1', width: 7, copies: 7 }, /raid1 keeps 2 to 6 copies, got copies = 7/],
    [{ name: 'raid1', width: 3, copies: 2 }, /raid1 with 2 copies spans exactly 2 members, got width 3/],
    [{ name: 'raid10', width: 4, copies: 1 }, /raid10 keeps 2 to 6 copies/],
    [{ name: 'raid10', width: 2, copies: 2 }, /multiple of 2 and at least 4, got 2/],
    [{ name: 'raid10', width: 5, copies: 2 }, /multiple of 2 and at least 4, got 5/],
    [{ name: 'raid10', width: 3, copies: 3 }, /multiple of 3 and at least 6, got 3/],
    [{ name: 'raid10', width: 8, copies: 3 }, /multiple of 3 and at least 6, got 8/],
    [{ name: 'raid5', width: 2, copies: 1 }, /raid5 needs a width of at least 3 members, got 2/],
    [{ name: 'raid5', width: 4, copies: 2 }, /raid5 keeps one copy/],
    [{ name: 'raid6', width: 3, copies: 1 }, /raid6 needs a width of 4 to 257 members, got 3/],
    [{ name: 'raid6', width: 258, copies: 1 }, /raid6 needs a width of 4 to 257 members, got 258/],
    [{ name: 'raid6', width: Number.NaN, copies: 1 }, /raid6 needs a width .* got NaN/],
  ])('%j is refused with a reason', (spec, reason) => {
    expect(layouts[spec.name].validate(spec)).toMatch(reason);
  });
});

describe('raid5 (left-symmetric, as Linux md)', () => {
  it('places P and data exactly as md does for width 4', () => {
    // Row r as a picture, column 0 first: md's ALGORITHM_LEFT_SYMMETRIC.
    const pictures = ['D0 D1 D2 P', 'D1 D2 P D0', 'D2 P D0 D1', 'P D0 D1 D2', 'D0 D1 D2 P'];
    const spec: LayoutSpec = { name: 'raid5', width: 4, copies: 1 };
    pictures.forEach((picture, r) => expect(draw(layouts.raid5.row(spec, r), 4)).toBe(picture));
  });

  it('follows p = w-1-(r mod w), data k at (p+1+k) mod w for any width and row', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 32 }), rowIndex, (width, r) => {
        const row = layouts.raid5.row({ name: 'raid5', width, copies: 1 }, r);
        const p = width - 1 - (r % width);
        expect(row.p).toBe(p);
        row.data.forEach((columns, k) => expect(columns).toEqual([(p + 1 + k) % width]));
      }),
    );
  });
});

describe('raid6 (left-symmetric, as Linux md)', () => {
  it('places P, Q and data exactly as md does for width 5', () => {
    const pictures = ['Q D0 D1 D2 P', 'D0 D1 D2 P Q', 'D1 D2 P Q D0', 'D2 P Q D0 D1', 'P Q D0 D1 D2', 'Q D0 D1 D2 P'];
    const spec: LayoutSpec = { name: 'raid6', width: 5, copies: 1 };
    pictures.forEach((picture, r) => expect(draw(layouts.raid6.row(spec, r), 5)).toBe(picture));
  });

  it('follows p = w-1-(r mod w), q = (p+1) mod w, data k at (p+2+k) mod w', () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 32 }), rowIndex, (width, r) => {
        const row = layouts.raid6.row({ name: 'raid6', width, copies: 1 }, r);
        const p = width - 1 - (r % width);
        expect([row.p, row.q]).toEqual([p, (p + 1) % width]);
        row.data.forEach((columns, k) => expect(columns).toEqual([(p + 2 + k) % width]));
      }),
    );
  });
});

describe('raid10 grouping', () => {
  it('mirrors unit k on columns k, k+g, …; width 6 with 2 copies', () => {
    expect(layouts.raid10.row({ name: 'raid10', width: 6, copies: 2 }, 7).data).toEqual([
      [0, 3],
      [1, 4],
      [2, 5],
    ]);
  });

  it('puts consecutive data units, across row boundaries too, on disjoint members', () => {
    fc.assert(
      fc.property(validSpec('raid10'), rowIndex, (spec, r) => {
        const units = [...layouts.raid10.row(spec, r).data, ...layouts.raid10.row(spec, r + 1).data];
        for (let k = 0; k + 1 < units.length; k++) {
          expect(units[k]!.some((c) => units[k + 1]!.includes(c))).toBe(false);
        }
      }),
    );
  });
});

describe('defaultWidth', () => {
  it.each<[LayoutName, number, number, number]>([
    ['raid0', 1, 1, 1],
    ['raid0', 5, 1, 5],
    ['raid0', 30, 1, 16],
    ['raid1', 9, 2, 2],
    ['raid1', 9, 4, 4],
    ['raid10', 4, 2, 4],
    ['raid10', 7, 2, 6],
    ['raid10', 20, 2, 16],
    ['raid10', 20, 3, 15],
    ['raid10', 8, 3, 6],
    ['raid5', 3, 1, 3],
    ['raid5', 6, 1, 6],
    ['raid5', 12, 1, 8],
    ['raid5', 2, 1, 3],
    ['raid6', 4, 1, 4],
    ['raid6', 9, 1, 9],
    ['raid6', 14, 1, 10],
    ['raid6', 3, 1, 4],
  ])('%s on %i members with %i copies → %i', (name, members, copies, width) => {
    expect(layouts[name].defaultWidth(members, copies)).toBe(width);
  });
});

describe('parseLayoutName', () => {
  it.each<[string, LayoutName, number]>([
    ['raid0', 'raid0', 1],
    ['raid1', 'raid1', 2],
    ['raid1x3', 'raid1', 3],
    ['raid1x4', 'raid1', 4],
    ['raid10', 'raid10', 2],
    ['raid5', 'raid5', 1],
    ['raid6', 'raid6', 1],
    [' RAID6 ', 'raid6', 1],
  ])('reads %j', (text, name, copies) => {
    expect(parseLayoutName(text)).toEqual({ name, copies });
  });

  it.each(['', 'raid2', 'raid1x5', 'raid 5', 'mirror', 'toString', '__proto__'])('refuses %j, listing the valid names', (text) => {
    expect(() => parseLayoutName(text)).toThrow(LayoutNameError);
    expect(() => parseLayoutName(text)).toThrow(
      `unknown layout "${text}": expected one of raid0, raid1, raid1x3, raid1x4, raid10, raid5, raid6`,
    );
  });
});

function draw(row: RowMap, width: number): string {
  const cells = Array.from({ length: width }, () => '?');
  row.data.forEach((columns, k) => columns.forEach((c) => (cells[c] = `D${k}`)));
  if (row.p !== undefined) cells[row.p] = 'P';
  if (row.q !== undefined) cells[row.q] = 'Q';
  return cells.join(' ');
}
