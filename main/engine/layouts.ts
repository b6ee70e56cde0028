/**
 * The registry of layouts by name, and the CLI's spellings of them.
 * `raid1x3` is raid1 with three copies; plain `raid1` and `raid10` keep two.
 */
import type { Layout, LayoutName } from './layout.js';
import { raid0 } from './raid0.js';
import { raid1 } from './raid1.js';
import { raid10 } from './raid10.js';
import { raid5 } from './raid5.js';
import { raid6 } from './raid6.js';

export const layouts: Readonly<Record<LayoutName, Layout>> = Object.freeze({ raid0, raid1, raid10, raid5, raid6 });

/** The spellings the CLI accepts, and what each means. */
const SPELLINGS: Readonly<Record<string, { readonly name: LayoutName; readonly copies: number }>> = Object.freeze({
  raid0: { name: 'raid0', copies: 1 },
  raid1: { name: 'raid1', copies: 2 },
  raid1x3: { name: 'raid1', copies: 3 },
  raid1x4: { name: 'raid1', copies: 4 },
  raid10: { name: 'raid10', copies: 2 },
  raid5: { name: 'raid5', copies: 1 },
  raid6: { name: 'raid6', copies: 1 },
});

export class LayoutNameError extends Error {
  constructor(text: string) {
    super(`unknown layout "${text}": expected one of ${Object.keys(SPELLINGS).join(', ')}`);
    this.name = 'LayoutNameError';
  }
}

/** Reads a CLI layout name (case and surrounding blanks ignored); throws LayoutNameError listing the valid names. */
export function parseLayoutName(text: string): { name: LayoutName; copies: number } {
  const key = text.trim().toLowerCase();
  const spelling = Object.hasOwn(SPELLINGS, key) ? SPELLINGS[key] : undefined;
  if (!spelling) throw new LayoutNameError(text);
  return { name: spelling.name, copies: spelling.copies };
}
