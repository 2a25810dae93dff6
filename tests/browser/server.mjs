// Starts and stops a real ExampleIM server for the browser tests: its own
// config, plugins.d (auth-jwt, store-sqlite, filter-sensitive in mask mode)
// and data directory under a temporary folder, the web client from web/.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '..', '..');
export const buildDir = process.env.EIM_BUILD_DIR || join(repo, 'build-test');

const START_TIMEOUT_MS = 60000;
// Messages containing this word are refused by the reject-mode filter.
export const REJECT_WORD = 'frobnicate';

export class Server {
  constructor() {
    this.root = mkdtempSync(join(tmpdir(), 'eim-browser-'));
    this.dataDir = join(this.root, 'data');
    this.pluginsDir = join(this.root, 'plugins.d');
    this.config = join(this.root, 'exampleim.conf');
    this.binary = join(buildDir, 'bin', 'exampleim');
    this.pluginPath = join(buildDir, 'lib', 'exampleim', 'plugins');
    this.proc = null;
    this.addr = null;
    this.log = '';
    mkdirSync(this.dataDir);
    mkdirSync(this.pluginsDir);
    writeFileSync(this.config, [
      `web_dir = ${join(repo, 'web')}`,
      'log_level = info',
      '',
    ].join('\n'));
    writeFileSync(join(this.pluginsDir, '10-auth-jwt.conf'),
      `plugin = auth-jwt\nsecret = ${randomBytes(32).toString('hex')}\n`);
    writeFileSync(join(this.pluginsDir, '20-store-sqlite.conf'), 'plugin = store-sqlite\n');
    writeFileSync(join(this.pluginsDir, '40-filter-sensitive.conf'), [
      'plugin = filter-sensitive',
      `words_file = ${join(repo, 'plugins', 'filter-sensitive', 'words.txt')}`,
      'mode = mask',
      '',
    ].join('\n'));
    // A second instance refuses messages outright, to show `rejected`.
    const rejectWords = join(this.root, 'reject-words.txt');
    writeFileSync(rejectWords, `${REJECT_WORD}\n`);
    writeFileSync(join(this.pluginsDir, '41-filter-reject.conf'), [
      'plugin = filter-sensitive',
      `words_file = ${rejectWords}`,
      'mode = reject',
      '',
    ].join('\n'));
  }

  checkBuilt() {
    for (const f of [this.binary, join(this.pluginPath, 'auth-jwt.so'),
      join(this.pluginPath, 'store-sqlite.so'), join(this.pluginPath, 'filter-sensitive.so')]) {
      if (!existsSync(f)) {
        throw new Error(`${f} is missing: build the server first (cmake --build ${buildDir} ` +
          '--target exampleim auth-jwt store-sqlite filter-sensitive)');
      }
    }
  }

  // Starts the server on `listen` (a free port the first time, the same one
  // on restarts) and resolves with its base URL once it logs "listening".
  start(listen = this.addr || '127.0.0.1:0') {
    this.checkBuilt();
    const supp = join(repo, 'tests', 'lsan.supp');
    const env = { ...process.env };
    if (existsSync(supp) && !env.LSAN_OPTIONS) env.LSAN_OPTIONS = `suppressions=${supp}`;
    const proc = spawn(this.binary, ['--config', this.config, '--listen', listen,
      '--data-dir', this.dataDir, '--plugins-dir', this.pluginsDir,
      '--plugin-path', this.pluginPath], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    if (!this.reaper) {
      // Never leave a server behind when the test process ends early.
      this.reaper = () => this.proc?.kill('SIGKILL');
      process.on('exit', this.reaper);
    }
    this.exited = new Promise((res) => proc.on('exit', (code, signal) => res({ code, signal })));
    return new Promise((res, rej) => {
      let ready = false;
      let out = '';
      const timer = setTimeout(() => rej(new Error(`server did not start:\n${out}`)), START_TIMEOUT_MS);
      proc.stderr.setEncoding('utf8');
      proc.stderr.on('data', (chunk) => {
        this.log += chunk;
        if (ready) return;
        out += chunk;
        const m = /msg="listening" addr=(\S+)/.exec(out);
        if (m) {
          ready = true;
          this.addr = m[1];
          clearTimeout(timer);
          res(this.url);
        }
      });
      proc.on('exit', (code) => {
        clearTimeout(timer);
        if (!ready) rej(new Error(`server exited with ${code} before listening:\n${out}`));
      });
    });
  }

  get url() {
    return `http://${this.addr}`;
  }

  // SIGTERM, then wait for the process to end; resolves with {code, signal}.
  async stop() {
    if (!this.proc) return null;
    const proc = this.proc;
    this.proc = null;
    proc.kill('SIGTERM');
    return this.exited;
  }

  cleanup() {
    rmSync(this.root, { recursive: true, force: true });
  }
}
