/**
 * Image grids: several RGBImages → one PNG (for files and `display.png`), or → an HTML figure
 * with labels (for `display.html` in a notebook; the labels are text, so no font rendering is needed).
 */
import sharp from 'sharp';
import { RGBImage } from '../data/image';
import { encodeImage, toUint8 } from '../data/io';
import { escapeHtml } from './table';

export interface GridOptions {
  /** images per row (default: all in one row) */
  columns?: number;
  /** gap between cells in pixels (default 4) */
  gap?: number;
  /** background grey level in [0,1] (default 1 = white) */
  background?: number;
  /** every cell is resized to this height, keeping aspect (default: the tallest image's height) */
  cellHeight?: number;
}

/** Compose images row-major into one PNG. Cells are scaled to a common height. */
export async function gridPng(images: RGBImage[], opts: GridOptions = {}): Promise<Buffer> {
  if (images.length === 0) throw new Error('gridPng: no images');
  const cols = Math.max(1, Math.min(opts.columns ?? images.length, images.length));
  const gap = opts.gap ?? 4;
  const cellH = opts.cellHeight ?? Math.max(...images.map((i) => i.height));
  const cells = await Promise.all(
    images.map(async (img) => {
      const w = Math.max(1, Math.round((img.width * cellH) / img.height));
      const buf = await sharp(Buffer.from(toUint8(img).buffer), { raw: { width: img.width, height: img.height, channels: 3 } })
        .resize(w, cellH, { kernel: img.height < cellH ? 'nearest' : 'lanczos3', fit: 'fill' })
        .png()
        .toBuffer();
      return { buf, w };
    }),
  );
  const rows = Math.ceil(images.length / cols);
  const colW = Array.from({ length: cols }, (_, c) => Math.max(...cells.filter((_, i) => i % cols === c).map((x) => x.w)));
  const width = colW.reduce((a, b) => a + b, 0) + gap * (cols + 1);
  const height = rows * cellH + gap * (rows + 1);
  const bg = Math.round((opts.background ?? 1) * 255);
  const composites = cells.map((cell, i) => {
    const r = Math.floor(i / cols);
    const c = i % cols;
    const left = gap + colW.slice(0, c).reduce((a, b) => a + b, 0) + c * gap;
    return { input: cell.buf, left, top: gap + r * (cellH + gap) };
  });
  return sharp({ create: { width, height, channels: 3, background: { r: bg, g: bg, b: bg } } })
    .composite(composites)
    .removeAlpha()
    .png()
    .toBuffer();
}

/** `<img>` with the image inlined as a base64 PNG. `height` scales the display, aspect ratio and nearest-neighbour look kept. */
export async function imageTag(img: RGBImage, height?: number): Promise<string> {
  const b64 = (await encodeImage(img, 'png')).toString('base64');
  // width:auto, or the width attribute would keep the natural width and stretch the image to `height`
  const style = height ? ` style="height:${height}px;width:auto;image-rendering:pixelated"` : '';
  return `<img src="data:image/png;base64,${b64}" width="${img.width}" height="${img.height}"${style} alt="image"/>`;
}

export interface LabelledImage {
  image: RGBImage;
  label: string;
}

/** Narrowest cell of `imageGridHtml` (px), so that a label of a small image still has room for a few words per line. */
const MIN_CELL_WIDTH = 96;

/**
 * A grid label that fits about three lines of a `width`-px cell (12 px sans-serif, ≈ 6.5 px per
 * character): longer labels are cut, at a space when one is near the end, and end in "…".
 */
function cellLabel(label: string, width: number): { text: string; cut: boolean } {
  const max = Math.max(24, Math.floor((3 * width) / 6.5));
  if (label.length <= max) return { text: label, cut: false };
  const head = label.slice(0, max - 1);
  const space = head.lastIndexOf(' ');
  return { text: `${(space > 0.7 * max ? head.slice(0, space) : head).trimEnd()}…`, cut: true };
}

/**
 * An HTML figure: labelled images in rows of `columns` (default all), each shown `height` px tall
 * with its aspect ratio. Each label wraps inside its cell (as wide as the image, at least 96 px), so
 * labels never run into their neighbours; a label longer than about three lines is cut with "…" and
 * shown whole as the caption's tooltip.
 */
export async function imageGridHtml(items: LabelledImage[], opts: { columns?: number; height?: number; title?: string } = {}): Promise<string> {
  const cols = opts.columns ?? items.length;
  const h = opts.height ?? 160;
  const cells = await Promise.all(
    items.map(async (it) => {
      const w = Math.max(MIN_CELL_WIDTH, Math.round((it.image.width * h) / it.image.height));
      const label = cellLabel(it.label, w);
      const title = label.cut ? ` title="${escapeHtml(it.label)}"` : '';
      return (
        `<figure style="margin:4px;display:inline-block;text-align:center;vertical-align:top;width:${w}px">${await imageTag(it.image, h)}` +
        `<figcaption style="font:12px sans-serif;white-space:normal;overflow-wrap:anywhere"${title}>${escapeHtml(label.text)}</figcaption></figure>`
      );
    }),
  );
  const rows: string[] = [];
  for (let i = 0; i < cells.length; i += cols) rows.push(`<div style="white-space:nowrap">${cells.slice(i, i + cols).join('')}</div>`);
  const title = opts.title ? `<div style="font:bold 13px sans-serif;margin:4px">${escapeHtml(opts.title)}</div>` : '';
  return `<div class="tdr-grid">${title}${rows.join('')}</div>`;
}
