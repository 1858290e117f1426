/**
 * Files and folders on the command line, shared by `tdr restore`, `tdr degrade` and `tdr guide`:
 * a folder input is processed file by file (non-images skipped, a bad file reported in one line and
 * skipped, exit ≠ 0 at the end if any failed), and no output may ever be one of the inputs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../util/errors';
import { OUTPUT_EXTENSIONS } from '../data/io';

/** File name extensions read as images (sharp decodes them; anything else in a folder is skipped). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.gif', '.avif', '.heic', '.heif'] as const;

export function isImageName(file: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(path.extname(file).toLowerCase());
}

export function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The image files of a folder (sorted, not recursive) and how many other entries were skipped. */
export function listImages(dir: string): { images: string[]; skipped: string[] } {
  let names: string[];
  try {
    names = fs.readdirSync(dir).sort();
  } catch (e) {
    throw new UserError(`${dir}: cannot read the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const images: string[] = [];
  const skipped: string[] = [];
  for (const n of names) {
    const p = path.join(dir, n);
    if (n.startsWith('.')) continue;
    if (isImageName(n) && !isDirectory(p)) images.push(p);
    else skipped.push(p);
  }
  return { images, skipped };
}

/** True when a and b name the same file (same path after resolving links, or the same inode). */
export function sameFile(a: string, b: string): boolean {
  const ra = path.resolve(a);
  const rb = path.resolve(b);
  if (ra === rb) return true;
  try {
    const sa = fs.statSync(ra);
    const sb = fs.statSync(rb);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    try {
      return fs.realpathSync(path.dirname(ra)) === fs.realpathSync(path.dirname(rb)) && path.basename(ra) === path.basename(rb);
    } catch {
      return false;
    }
  }
}

/** Refuse an output that is one of the inputs (it would be overwritten). `what` names the option. */
export function refuseOverwrite(out: string, inputs: string[], what = '--out'): void {
  for (const i of inputs) {
    if (sameFile(out, i)) throw new UserError(`${what} ${out} is the input file ${i}; refusing to overwrite an input — give another output name`);
  }
}

/**
 * The output file for `input` in folder `outDir`: the same name, with the input's extension when tdr
 * writes that format (PNG, JPEG, WebP, TIFF), else '.png'; `ext` forces one.
 */
export function outputPathFor(input: string, outDir: string, ext?: string): string {
  const e = path.extname(input);
  const keep = (OUTPUT_EXTENSIONS as readonly string[]).includes(e.toLowerCase());
  return path.join(outDir, path.basename(input, e) + (ext ?? (keep ? e : '.png')));
}

/**
 * A folder run's `--out`: an existing or new folder that is not the input folder (it would overwrite
 * the inputs). Created if missing.
 */
export function prepareOutputFolder(inDir: string, outDir: string): void {
  if (fs.existsSync(outDir) && !isDirectory(outDir)) throw new UserError(`--out ${outDir}: the input ${inDir} is a folder, so --out must be a folder too (it is a file)`);
  if (sameFile(inDir, outDir)) throw new UserError(`--out ${outDir} is the input folder; refusing to write over the inputs — give another folder`);
  try {
    fs.mkdirSync(outDir, { recursive: true });
  } catch (e) {
    throw new UserError(`--out ${outDir}: cannot create the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * Run `fn` on every file; a failing file is reported in ONE line on stderr (`tdr <cmd>: <message>`)
 * and the others go on. Returns the exit code: 0 when all succeeded, 2 when a file was bad (a
 * UserError), 1 when one hit an internal error.
 */
export async function forEachFile(command: string, files: string[], fn: (file: string, index: number) => Promise<void>): Promise<number> {
  let userErrors = 0;
  let internal = 0;
  for (const [i, f] of files.entries()) {
    try {
      await fn(f, i);
    } catch (e) {
      const user = e instanceof UserError;
      if (user) userErrors++;
      else internal++;
      const msg = (e as Error)?.message?.split('\n')[0] ?? String(e);
      process.stderr.write(`tdr ${command}: ${user ? '' : 'internal error: '}${msg.includes(f) ? msg : `${f}: ${msg}`}\n`);
    }
  }
  const failed = userErrors + internal;
  if (failed) process.stderr.write(`tdr ${command}: ${failed} of ${files.length} file(s) failed\n`);
  return internal ? 1 : userErrors ? 2 : 0;
}
