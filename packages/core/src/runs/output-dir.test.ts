import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GantryError } from '../errors.js';
import { readModelFile } from '../torch/import.js';
import { claimOutputDir, Interrupted, interrupts } from './output-dir.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-outdir-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...p: string[]) => path.join(tmp, ...p);
const leftovers = () => fs.readdirSync(tmp).filter((n) => n.includes('.tmp-'));

describe('claimOutputDir', () => {
  it('refuses /proc at once (Node recursive mkdir spins there), and a file in the path', () => {
    for (const p of ['/proc/gantry-x', '/proc/self/gantry-x', '/proc/gantry-x/y']) {
      const start = performance.now();
      expect(() => claimOutputDir(p, { what: 'import-torch' })).toThrow(
        new RegExp(`^--out ${p}: /proc(/self)? is on proc, a kernel file system, not a place for files$`),
      );
      expect(performance.now() - start).toBeLessThan(1000);
    }
    fs.writeFileSync(at('afile'), 'x');
    expect(() => claimOutputDir(at('afile', 'sub'), { what: 'export' })).toThrow(
      /^--out .*afile\/sub: .*afile is a file, expected a directory$/,
    );
    expect(() => claimOutputDir(at('afile'), { what: 'export' })).toThrow(/afile: is a file, expected a directory$/);
  });

  it('takes a new or empty folder; a non-empty one only with --force, and replaces its content', () => {
    const out = at('o1');
    let d = claimOutputDir(out, { what: 'export' });
    fs.writeFileSync(path.join(d.tmp, 'model.json'), 'new');
    d.commit();
    expect(fs.readdirSync(out)).toEqual(['model.json']);
    expect(() => claimOutputDir(out, { what: 'export' })).toThrow(
      /^--out .*o1: already exists and is not empty \(pass --force to replace it\)$/,
    );
    fs.writeFileSync(path.join(out, 'weights.bin'), 'old');
    d = claimOutputDir(out, { what: 'export', force: true });
    fs.writeFileSync(path.join(d.tmp, 'metadata.json'), '{}');
    d.commit();
    expect(fs.readdirSync(out).sort()).toEqual(['metadata.json']);
    expect(leftovers()).toEqual([]);
  });

  it('one owner at a time: a second claim of a folder in use names the holder', () => {
    const out = at('o2');
    const d = claimOutputDir(out, { what: 'import-torch' });
    expect(() => claimOutputDir(out, { what: 'import-torch', force: true })).toThrow(
      new RegExp(`^--out .*o2: in use by another import-torch \\(pid ${process.pid}\\)`),
    );
    d.abort();
    expect(fs.existsSync(out)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('removes the temporary sibling a killed command left (under the lock)', () => {
    const out = at('o5');
    fs.mkdirSync(`${out}.tmp-99999999-abcdef`);
    fs.writeFileSync(`${out}.tmp-99999999-abcdef/weights.bin`, 'half');
    fs.writeFileSync(at('o5.tmp-notes.txt'), 'not ours');
    const d = claimOutputDir(out, { what: 'import-torch' });
    d.commit();
    expect(fs.existsSync(`${out}.tmp-99999999-abcdef`)).toBe(false);
    expect(fs.existsSync(at('o5.tmp-notes.txt'))).toBe(true);
    fs.rmSync(at('o5.tmp-notes.txt'));
  });

  it('abort leaves an existing folder as it was', () => {
    const out = at('o3');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'keep'), 'k');
    const d = claimOutputDir(out, { what: 'export', force: true });
    fs.writeFileSync(path.join(d.tmp, 'half'), 'h');
    d.abort();
    expect(fs.readdirSync(out)).toEqual(['keep']);
    expect(leftovers()).toEqual([]);
  });
});

describe('--force', () => {
  it('never empties a folder holding an input, the current folder, home or the root', () => {
    const out = at('o4');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'model.pth'), 'x');
    expect(() =>
      claimOutputDir(out, { what: 'import-torch', force: true, inputs: [path.join(out, 'model.pth')] }),
    ).toThrow(/^--out .*o4: --force would delete .*model\.pth, which this command reads; choose another folder$/);
    expect(() => claimOutputDir(tmp, { what: 'export', force: true, inputs: [path.join(out, 'model.pth')] })).toThrow(
      /--force would delete/,
    );
    expect(() => claimOutputDir(os.homedir(), { what: 'export', force: true })).toThrow(
      /--force would empty your home folder; choose a folder of its own$/,
    );
    expect(() => claimOutputDir('/', { what: 'export', force: true })).toThrow(/--force would empty the root folder/);
    expect(fs.readdirSync(out)).toEqual(['model.pth']);
    expect(leftovers()).toEqual([]);
  });
});

describe('interrupts', () => {
  it('turns SIGINT into exit 130 and SIGTERM into 143 at the next check', async () => {
    for (const [sig, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      const s = interrupts('import-torch');
      await s.check();
      process.emit(sig, sig);
      const err = await s.check().then(
        () => undefined,
        (e: unknown) => e,
      );
      s.dispose();
      expect(err).toBeInstanceOf(Interrupted);
      expect((err as GantryError).exitCode).toBe(code);
      expect((err as Error).message).toBe(`import-torch interrupted (${sig}): nothing was written`);
    }
  });
});

describe('readModelFile', () => {
  it('refuses a named pipe without blocking, a device, a directory and a missing file', () => {
    const fifo = at('pipe.pth');
    execFileSync('mkfifo', [fifo]);
    expect(() => readModelFile(fifo, '--from')).toThrow(/^--from .*pipe\.pth: a named pipe, expected a \.pth file$/);
    expect(() => readModelFile('/dev/zero', '--from')).toThrow(/^--from \/dev\/zero: a device, expected a \.pth file$/);
    expect(() => readModelFile(tmp, '--from')).toThrow(/a directory, expected a \.pth file$/);
    expect(() => readModelFile(at('nope.pth'), '--from')).toThrow(/nope\.pth: no such file$/);
    expect(() => readModelFile(at('nope.pth'), '--from')).toThrow(GantryError);
  });

  it('refuses a file that is not a PyTorch file from its first bytes', () => {
    const f = at('video.pth');
    fs.writeFileSync(f, Buffer.alloc(3 * 2 ** 20, 0x42));
    expect(() => readModelFile(f, '--from')).toThrow(
      /^--from .*video\.pth: not a PyTorch file \(neither a zip archive nor a legacy torch\.save pickle\)$/,
    );
  });
});
