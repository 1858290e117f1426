/**
 * Run a notebook the way a user does: Jupyter Notebook on 127.0.0.1 with the project's tslab kernel,
 * Debian's Chromium driven by playwright-core (no browser download), "run all", then check what
 * rendered — an image, a table, a plotly chart — and that no cell failed; save a screenshot.
 * Used by test/browser (CI) and by `node dist/lib/notebooks/browser.js <notebook>`.
 */
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { projectRoot } from '../util/fsx';
import { installKernelSpec } from './kernel';
import { findJupyter } from './run';

export const CHROMIUM = process.env.TDR_CHROMIUM || '/usr/bin/chromium';

export interface BrowserRunResult {
  ok: boolean;
  /** code cells whose execute reply was an error, or that never ran (aborted after an error) */
  failed: Array<{ index: number; status: string; text: string }>;
  found: { image: number; table: number; plotly: number };
  screenshot: string;
  seconds: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function get(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.setTimeout(2000, () => {
      req.destroy();
      resolve(0);
    });
  });
}

/** Start Jupyter Notebook on a free loopback port; resolves when its API answers. */
export async function startJupyter(root: string, env: NodeJS.ProcessEnv = {}): Promise<{ url: string; proc: ChildProcess; stop: () => Promise<void> }> {
  const jupyter = findJupyter();
  const jupyterPath = installKernelSpec(root);
  const port = await freePort();
  const proc = spawn(
    jupyter,
    ['notebook', '--no-browser', ...(process.getuid?.() === 0 ? ['--allow-root'] : []), '--ip=127.0.0.1', `--port=${port}`, '--NotebookApp.token=', '--NotebookApp.password=', `--notebook-dir=${root}`],
    { cwd: root, env: { ...process.env, ...env, JUPYTER_PATH: jupyterPath }, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let log = '';
  proc.stdout!.on('data', (d) => (log += d));
  proc.stderr!.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  while ((await get(`${url}/api`)) !== 200) {
    if (proc.exitCode !== null || Date.now() - t0 > 60_000) {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {}
      throw new Error(`jupyter notebook did not start on ${url} within 60 s:\n${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const stop = async () => {
    try {
      process.kill(-proc.pid!, 'SIGTERM');
    } catch {}
    await new Promise((r) => setTimeout(r, 500));
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {}
  };
  return { url, proc, stop };
}

/**
 * Open `notebook` (path relative to the project root) in Chromium, run all cells, wait until the
 * kernel is idle, and report. `timeoutMs` bounds the whole run.
 */
export async function runNotebookInBrowser(notebook: string, opts: { root?: string; screenshot?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<BrowserRunResult> {
  const root = opts.root ?? projectRoot();
  const t0 = Date.now();
  const timeout = opts.timeoutMs ?? 15 * 60_000;
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM}: no Chromium (Debian: apt-get install chromium; or set TDR_CHROMIUM)`);
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  const server = await startJupyter(root, { TDR_PRESET: 'ci', ...opts.env });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/notebooks/${notebook.split(path.sep).map(encodeURIComponent).join('/')}`, { timeout: 60_000 });
    await page.waitForFunction(() => {
      const J = (window as any).Jupyter;
      return J && J.notebook && J.notebook.kernel && J.notebook.kernel.is_connected() && !J.notebook.kernel_busy;
    }, undefined, { timeout: 120_000, polling: 250 });
    // record every cell's execute reply status, then run all
    await page.evaluate(() => {
      const w = window as any;
      w.__tdrReplies = [];
      const proto = w.IPython.CodeCell.prototype;
      const orig = proto._handle_execute_reply;
      proto._handle_execute_reply = function (msg: any) {
        w.__tdrReplies.push({ index: w.Jupyter.notebook.find_cell_index(this), status: msg.content.status });
        return orig.apply(this, arguments);
      };
      w.Jupyter.notebook.clear_all_output();
      w.Jupyter.notebook.execute_all_cells();
    });
    await page.waitForFunction(
      () => {
        const J = (window as any).Jupyter;
        const cells = J.notebook.get_cells().filter((c: any) => c.cell_type === 'code');
        return !J.notebook.kernel_busy && cells.every((c: any) => c.input_prompt_number !== '*');
      },
      undefined,
      { timeout: Math.max(10_000, timeout - (Date.now() - t0)), polling: 500 },
    );
    await page.waitForTimeout(1500); // let plotly draw
    const report = await page.evaluate(() => {
      const w = window as any;
      const cells = w.Jupyter.notebook.get_cells();
      const replies: Array<{ index: number; status: string }> = w.__tdrReplies;
      const failed: Array<{ index: number; status: string; text: string }> = [];
      cells.forEach((c: any, index: number) => {
        if (c.cell_type !== 'code') return;
        const r = replies.filter((x) => x.index === index).pop();
        const text = (c.output_area.outputs || []).map((o: any) => o.text || o.evalue || '').join('').slice(-1500);
        if (!r) failed.push({ index, status: 'not run', text });
        else if (r.status !== 'ok') failed.push({ index, status: r.status, text });
      });
      return {
        failed,
        found: {
          image: document.querySelectorAll('.output_area img').length,
          table: document.querySelectorAll('.output_area table').length,
          plotly: document.querySelectorAll('.output_area svg.main-svg').length,
        },
      };
    });
    const shot = opts.screenshot ?? path.join(root, 'outputs', 'browser', `${path.basename(notebook, '.ipynb')}.png`);
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    // the notebook scrolls inside #site: grow the viewport to the whole notebook (capped) for the screenshot
    const height = await page.evaluate(() => (document.querySelector('#notebook')?.scrollHeight ?? 900) + 150);
    await page.setViewportSize({ width: 1280, height: Math.min(Math.max(900, height), 16000) });
    await page.waitForTimeout(500);
    await page.screenshot({ path: shot });
    return { ok: report.failed.length === 0, failed: report.failed, found: report.found, screenshot: shot, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await browser.close();
    await server.stop();
  }
}

if (require.main === module) {
  const nb = process.argv[2];
  if (!nb) {
    process.stderr.write('usage: node dist/lib/notebooks/browser.js notebooks/<name>.ipynb\n');
    process.exit(2);
  }
  runNotebookInBrowser(nb).then(
    (r) => {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      process.exitCode = r.ok ? 0 : 1;
    },
    (e) => {
      process.stderr.write(`${e.message}\n`);
      process.exitCode = 1;
    },
  );
}
