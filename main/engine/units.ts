/**
 * Byte quantities as people write them: `512`, `64K`, `256M`, `1.5G`, `2T`,
 * `4GiB`. Binary units (K = 1024), as every disk tool on Linux reads them.
 */
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

export class SizeSyntaxError extends Error {
  constructor(text: string, reason: string) {
    super(`invalid size "${text}": ${reason}`);
    this.name = 'SizeSyntaxError';
  }
}

/** Parses a size; throws SizeSyntaxError naming what is wrong. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgtpb]?)(?:i?b)?\s*$/i.exec(text);
  if (!match) throw new SizeSyntaxError(text, 'expected a number with an optional K, M, G, T or P suffix');
  const [, number, unit] = match;
  const bytes = Number(number) * UNITS[unit!.toLowerCase()]!;
  if (!Number.isSafeInteger(bytes)) {
    throw new SizeSyntaxError(text, Number.isInteger(bytes) ? 'too large' : 'not a whole number of bytes');
  }
  return bytes;
}

/** Formats bytes for people: `1.5 GiB`, `512 B`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const fixed = value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2);
  // Trailing zeros go only after a decimal point: 1.50 → 1.5, but 1020 stays 1020.
  const text = unit === 0 ? String(value) : fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
  return `${text} ${units[unit]}`;
}
