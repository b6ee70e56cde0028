/**
 * Draws a layout map on a canvas: one column per drive, one row per chunk
 * (or group of chunks). A canvas because 24 drives × hundreds of rows would
 * be thousands of DOM nodes; colours come from the theme's CSS variables, and
 * the canvas is redrawn when the system switches between light and dark.
 */
import { useEffect, useRef, useState } from 'react';
import { driveLabel } from '../../lib/drive-label';
import { CELL_LABELS, type CellKind, type LayoutMapModel } from './map-model';

export const CELL_KINDS: readonly CellKind[] = ['data', 'copy', 'parity-p', 'parity-q', 'rebuilding', 'degraded', 'lost', 'empty'];

export function columnWidth(columns: number): number {
  return Math.max(22, Math.min(96, Math.floor(720 / Math.max(1, columns))));
}

export function rowHeight(rows: number): number {
  return rows <= 16 ? 18 : rows <= 48 ? 10 : 6;
}

function readColours(element: Element): Record<CellKind, string> {
  const style = getComputedStyle(element);
  return Object.fromEntries(CELL_KINDS.map((k) => [k, style.getPropertyValue(`--map-${k}`).trim() || '#888'])) as Record<CellKind, string>;
}

export function LayoutMapCanvas({ model, label }: { model: LayoutMapModel; label: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const [scheme, setScheme] = useState(0);
  const [hover, setHover] = useState<string>();
  const colW = columnWidth(model.columns.length);
  const rowH = rowHeight(model.rows.length);
  const width = colW * model.columns.length;
  const height = rowH * model.rows.length;

  useEffect(() => {
    const query = window.matchMedia('(prefers-color-scheme: dark)');
    const onChange = () => setScheme((n) => n + 1);
    query.addEventListener('change', onChange);
    return () => query.removeEventListener('change', onChange);
  }, []);

  useEffect(() => {
    const canvas = ref.current;
    const ctx = canvas?.getContext('2d');
    if (!canvas || !ctx) return;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(width * ratio));
    canvas.height = Math.max(1, Math.round(height * ratio));
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const colours = readColours(canvas);
    ctx.clearRect(0, 0, width, height);
    const gap = rowH >= 10 ? 2 : 1;
    model.rows.forEach((row, r) => {
      row.cells.forEach((kind, c) => {
        ctx.fillStyle = colours[kind];
        ctx.fillRect(c * colW + 2, r * rowH + gap / 2, colW - 4, rowH - gap);
        if (kind === 'lost' && rowH >= 6) {
          // A cross on lost slabs, so their meaning does not rest on colour alone.
          ctx.strokeStyle = colours.empty;
          ctx.lineWidth = 1;
          ctx.beginPath();
          ctx.moveTo(c * colW + 3, r * rowH + gap / 2 + 1);
          ctx.lineTo((c + 1) * colW - 3, (r + 1) * rowH - gap / 2 - 1);
          ctx.stroke();
        }
      });
    });
  }, [model, width, height, colW, rowH, scheme]);

  const describe = (x: number, y: number): string | undefined => {
    const c = Math.floor(x / colW);
    const r = Math.floor(y / rowH);
    const row = model.rows[r];
    const column = model.columns[c];
    if (!row || !column) return undefined;
    const kind = row.cells[c]!;
    const chunks = row.firstChunk === row.lastChunk ? `Chunk ${row.firstChunk}` : `Chunks ${row.firstChunk}–${row.lastChunk}`;
    const slab = row.slabs?.[c];
    return `${chunks} on ${driveLabel(column.uri)}: ${CELL_LABELS[kind]}${slab !== undefined ? ` (slab ${slab})` : ''}`;
  };

  return (
    <div className="map-canvas-wrap">
      <canvas
        ref={ref}
        className="map-canvas"
        style={{ width, height }}
        role="img"
        aria-label={label}
        onMouseMove={(e) => {
          const box = e.currentTarget.getBoundingClientRect();
          setHover(describe(e.clientX - box.left, e.clientY - box.top));
        }}
        onMouseLeave={() => setHover(undefined)}
      />
      <p className="map-hover small tabular" aria-hidden="true">
        {hover ?? '\u00a0'}
      </p>
    </div>
  );
}
