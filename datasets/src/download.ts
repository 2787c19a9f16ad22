/**
 * Downloads the public pix2pix (`.tar.gz`) and CycleGAN (`.zip`) datasets hosted by the authors of
 * junyanz/pytorch-CycleGAN-and-pix2pix, verifies a SHA-256 when one is known or given, extracts into a
 * temporary folder, checks the layout and renames the result to `<dir>/<name>`.
 *
 * An archive already lying at `<dir>/<name>.tar.gz` / `.zip` (downloaded by hand) is used instead of the network.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { check, GantryError } from '@gantry/core';
import { isDir, listImages } from './folder.js';

export type DatasetKind = 'pix2pix' | 'cyclegan';

/** Names served at http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/<name>.tar.gz */
export const PIX2PIX_DATASETS = [
  'cityscapes',
  'edges2handbags',
  'edges2shoes',
  'facades',
  'maps',
  'night2day',
] as const;
/** Names served at http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/<name>.zip */
export const CYCLEGAN_DATASETS = [
  'ae_photos',
  'apple2orange',
  'cezanne2photo',
  'facades',
  'grumpifycat',
  'horse2zebra',
  'iphone2dslr_flower',
  'maps',
  'mini',
  'mini_colorization',
  'mini_pix2pix',
  'monet2photo',
  'summer2winter_yosemite',
  'ukiyoe2photo',
  'vangogh2photo',
] as const;

export const DATASET_HOST = 'http://efrosgans.eecs.berkeley.edu';

/**
 * Known SHA-256 digests, keyed `<kind>/<name>`. Empty for now: none could be verified while writing this
 * (no network); pass `sha256` to verify, and add entries here once they are confirmed.
 */
export const KNOWN_SHA256: Readonly<Record<string, string>> = {};

export interface DownloadOptions {
  /** Parent folder; the dataset lands in `<dir>/<name>` (default 'data'). */
  dir?: string;
  /** Which collection; default: pix2pix if the name is a pix2pix dataset, else cyclegan. */
  kind?: DatasetKind;
  /** Expected SHA-256 (hex) of the archive. */
  sha256?: string;
  /** Override the archive URL (mirrors, tests); the kind still decides .tar.gz vs .zip. */
  url?: string;
  /** Replace an existing `<dir>/<name>`. */
  force?: boolean;
  /** Keep the archive after extracting (default false). */
  keepArchive?: boolean;
  /** Called as bytes arrive. */
  onProgress?: (received: number, total: number | undefined) => void;
  /** fetch implementation (tests). */
  fetch?: typeof fetch;
  /** Give up connecting after this long (default 30 s). */
  connectTimeoutMs?: number;
}

export interface DownloadResult {
  /** Folder holding the dataset. */
  dir: string;
  kind: DatasetKind;
  url: string;
  /** SHA-256 of the archive (undefined when the dataset was already there). */
  sha256?: string;
  /** True when `<dir>/<name>` already existed with a valid layout and nothing was done. */
  existed: boolean;
}

/** Picks the collection of a dataset name. */
export function datasetKind(name: string, kind?: DatasetKind): DatasetKind {
  if (kind !== undefined) {
    check(kind === 'pix2pix' || kind === 'cyclegan', `--kind must be 'pix2pix' or 'cyclegan', got '${kind}'`);
    return kind;
  }
  if ((PIX2PIX_DATASETS as readonly string[]).includes(name)) return 'pix2pix';
  if ((CYCLEGAN_DATASETS as readonly string[]).includes(name)) return 'cyclegan';
  throw new GantryError(
    `unknown dataset '${name}' (pix2pix: ${PIX2PIX_DATASETS.join(', ')}; cyclegan: ${CYCLEGAN_DATASETS.join(', ')})`,
  );
}

/** The archive URL of a dataset. */
export function datasetUrl(name: string, kind: DatasetKind): string {
  return kind === 'pix2pix'
    ? `${DATASET_HOST}/pix2pix/datasets/${name}.tar.gz`
    : `${DATASET_HOST}/cyclegan/datasets/${name}.zip`;
}

/** Checks that `dir` holds a dataset of `kind`; throws a one-line GantryError naming `what` otherwise. */
export async function checkDatasetLayout(dir: string, kind: DatasetKind, what = dir): Promise<void> {
  const need = kind === 'pix2pix' ? ['train'] : ['trainA', 'trainB'];
  const expected =
    kind === 'pix2pix'
      ? 'a pix2pix dataset: train/ (and val/ or test/) with A|B images'
      : 'a CycleGAN dataset: trainA/, trainB/, testA/, testB/';
  for (const sub of need) {
    if (!(await isDir(join(dir, sub)))) throw new GantryError(`${what}: no ${sub}/ folder (expected ${expected})`);
    await listImages(join(dir, sub), dir, expected).catch(() => {
      throw new GantryError(`${what}: ${sub}/ has no images (expected ${expected})`);
    });
  }
}

function networkReason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (e as NodeJS.ErrnoException).code;
  const text: Record<string, string> = {
    ENOTFOUND: 'host not found (offline?)',
    EAI_AGAIN: 'DNS lookup failed (offline?)',
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ETIMEDOUT: 'timed out',
    ENETUNREACH: 'network unreachable',
    EHOSTUNREACH: 'host unreachable',
    UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  };
  if (code && text[code]) return `${text[code]} [${code}]`;
  if ((e as Error).name === 'AbortError' || (e as Error).name === 'TimeoutError') return 'connect timed out';
  return (cause?.message ?? (e as Error).message ?? String(e)).split('\n')[0]!;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Downloads `url` to `dest` (via a `.part` file, renamed when complete); returns its SHA-256. Also used for model files. */
export async function downloadToFile(
  url: string,
  dest: string,
  manualDir: string,
  opts: Pick<DownloadOptions, 'fetch' | 'onProgress' | 'connectTimeoutMs'> = {},
): Promise<string> {
  return fetchToFile(url, dest, manualDir, opts);
}

async function fetchToFile(
  url: string,
  dest: string,
  manualDir: string,
  opts: Pick<DownloadOptions, 'fetch' | 'onProgress' | 'connectTimeoutMs'>,
): Promise<string> {
  const f = opts.fetch ?? fetch;
  const host = (() => {
    try {
      return new URL(url).host;
    } catch {
      throw new GantryError(`${url}: not a valid URL`);
    }
  })();
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), opts.connectTimeoutMs ?? 30_000);
  let res: Response;
  try {
    res = await f(url, { signal: ctl.signal, redirect: 'follow' });
  } catch (e) {
    throw new GantryError(
      `cannot reach ${host}: ${networkReason(e)}; download ${url} by hand into ${manualDir}/ and run this again`,
    );
  } finally {
    clearTimeout(timer);
  }
  if (!res.ok || !res.body) {
    throw new GantryError(
      `${url}: HTTP ${res.status} ${res.statusText} (expected the dataset archive; check the name, or download it by hand into ${manualDir}/)`,
    );
  }
  const total = Number(res.headers.get('content-length')) || undefined;
  const part = `${dest}.part-${process.pid}`;
  const h = createHash('sha256');
  let fh: FileHandle | undefined;
  let received = 0;
  try {
    fh = await open(part, 'w');
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      h.update(chunk);
      await fh.write(chunk);
      received += chunk.length;
      opts.onProgress?.(received, total);
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    if (total !== undefined && received !== total)
      throw new GantryError(`${url}: download cut off at ${received} of ${total} bytes; run this again`);
    await rename(part, dest);
  } catch (e) {
    await fh?.close().catch(() => {});
    await rm(part, { force: true });
    if (e instanceof GantryError) throw e;
    throw new GantryError(
      `cannot download ${url}: ${networkReason(e)}; download it by hand into ${manualDir}/ and run this again`,
    );
  }
  return h.digest('hex');
}

const run = promisify(execFile);

/** Extracts a .tar.gz (with the tar CLI) or a .zip (in JS) into `dest`, which must exist. */
export async function extractArchive(archive: string, dest: string): Promise<void> {
  if (/\.zip$/i.test(archive)) return extractZip(archive, dest);
  check(
    /\.(tar\.gz|tgz|tar)$/i.test(archive),
    `${archive}: unknown archive type (expected .tar.gz, .tgz, .tar or .zip)`,
  );
  try {
    await run('tar', ['-xf', archive, '-C', dest, '--no-same-owner'], { maxBuffer: 1 << 20 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new GantryError(`cannot extract ${archive}: the 'tar' command is not installed`);
    const why = (err.stderr ?? err.message).trim().split('\n')[0];
    throw new GantryError(`${archive}: not a valid tar archive (${why})`);
  }
}

/** Whether a zip entry name stays inside the extraction folder. */
function safeEntry(name: string): string | undefined {
  const n = name.replace(/\\/g, '/');
  if (n.startsWith('/') || /^[a-zA-Z]:/.test(n) || n.includes('\0')) return undefined;
  const parts = n.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) return undefined;
  return parts.join(sep);
}

/** Minimal zip reader (stored and deflated entries, no zip64), reading entry by entry. */
async function extractZip(archive: string, dest: string): Promise<void> {
  const bad = (why: string) => new GantryError(`${archive}: not a valid zip archive (${why})`);
  const fh = await open(archive, 'r');
  try {
    const size = (await fh.stat()).size;
    const tailLen = Math.min(size, 65557);
    const tail = Buffer.alloc(tailLen);
    await fh.read(tail, 0, tailLen, size - tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw bad('no end-of-central-directory record');
    const entries = tail.readUInt16LE(eocd + 10);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    if (cdOffset === 0xffffffff || entries === 0xffff) throw bad('zip64 is not supported; extract it by hand');
    if (cdOffset + cdSize > size) throw bad('truncated');
    const cd = Buffer.alloc(cdSize);
    await fh.read(cd, 0, cdSize, cdOffset);
    let p = 0;
    const root = resolve(dest);
    for (let k = 0; k < entries; k++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw bad('corrupt central directory');
      const method = cd.readUInt16LE(p + 10);
      const csize = cd.readUInt32LE(p + 20);
      const usize = cd.readUInt32LE(p + 24);
      const nlen = cd.readUInt16LE(p + 28);
      const elen = cd.readUInt16LE(p + 30);
      const clen = cd.readUInt16LE(p + 32);
      const local = cd.readUInt32LE(p + 42);
      const rawName = cd.toString('utf8', p + 46, p + 46 + nlen);
      p += 46 + nlen + elen + clen;
      const rel = safeEntry(rawName);
      if (rel === undefined || rel === '') continue; // unsafe or empty names are skipped
      const out = join(root, rel);
      if (rawName.endsWith('/')) {
        await mkdir(out, { recursive: true });
        continue;
      }
      const lh = Buffer.alloc(30);
      await fh.read(lh, 0, 30, local);
      if (lh.readUInt32LE(0) !== 0x04034b50) throw bad(`corrupt local header for ${rawName}`);
      const dataStart = local + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
      if (dataStart + csize > size) throw bad(`truncated at ${rawName}`);
      const comp = Buffer.alloc(csize);
      await fh.read(comp, 0, csize, dataStart);
      let data: Buffer;
      if (method === 0) data = comp;
      else if (method === 8) {
        try {
          data = zlib.inflateRawSync(comp);
        } catch (e) {
          throw bad(`${rawName}: ${(e as Error).message}`);
        }
      } else throw bad(`${rawName}: compression method ${method} is not supported`);
      if (data.length !== usize) throw bad(`${rawName}: size ${data.length}, expected ${usize}`);
      await mkdir(dirname(out), { recursive: true });
      const o = await open(out, 'w');
      try {
        await o.writeFile(data);
      } finally {
        await o.close();
      }
    }
  } finally {
    await fh.close();
  }
}

/** The folder inside an extraction that holds the dataset: `<tmp>/<name>`, a single top folder, or `<tmp>` itself. */
async function findDatasetRoot(tmp: string, name: string): Promise<string> {
  if (await isDir(join(tmp, name))) return join(tmp, name);
  const top = (await readdir(tmp, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
  if (top.length === 1 && top[0]!.isDirectory()) return join(tmp, top[0]!.name);
  return tmp;
}

/** Downloads (or reuses a hand-downloaded archive), verifies, extracts and checks a dataset. */
export async function downloadDataset(name: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  check(
    /^[A-Za-z0-9_.-]+$/.test(name) && !name.startsWith('.'),
    `dataset name '${name}' must be a plain name like night2day`,
  );
  const kind =
    opts.url && opts.kind === undefined
      ? /\.zip$/i.test(opts.url)
        ? 'cyclegan'
        : 'pix2pix'
      : datasetKind(name, opts.kind);
  if (kind === 'cyclegan' && name === 'cityscapes' && !opts.url) {
    throw new GantryError(
      'cityscapes is not hosted for CycleGAN (license); get it from https://www.cityscapes-dataset.com and prepare it with the reference repo, or use the pix2pix copy (--kind pix2pix)',
    );
  }
  const url = opts.url ?? datasetUrl(name, kind);
  const dir = resolve(opts.dir ?? 'data');
  const target = join(dir, name);
  const expectedSha = (opts.sha256 ?? KNOWN_SHA256[`${kind}/${name}`])?.toLowerCase();
  if (opts.sha256 !== undefined)
    check(/^[0-9a-fA-F]{64}$/.test(opts.sha256), `--sha256 must be 64 hex digits, got '${opts.sha256}'`);

  if (await isDir(target)) {
    if (!opts.force) {
      await checkDatasetLayout(target, kind).catch((e: GantryError) => {
        throw new GantryError(
          `${e.message.split(' (expected')[0]} — ${target} exists but is incomplete; delete it or pass --force`,
        );
      });
      return { dir: target, kind, url, existed: true };
    }
  } else if (
    await stat(target).then(
      () => true,
      () => false,
    )
  ) {
    throw new GantryError(`${target}: exists and is not a folder (expected the dataset folder)`);
  }
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new GantryError(
      `--dir ${dir}: cannot create folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  const archive = join(dir, `${name}${kind === 'pix2pix' ? '.tar.gz' : '.zip'}`);
  const haveArchive = await stat(archive).then(
    (s) => s.isFile() && s.size > 0,
    () => false,
  );
  const sha = haveArchive ? await sha256File(archive) : await fetchToFile(url, archive, dir, opts);
  if (expectedSha && sha !== expectedSha) {
    if (!haveArchive) await rm(archive, { force: true });
    throw new GantryError(
      `${archive}: SHA-256 ${sha} does not match the expected ${expectedSha}${haveArchive ? ' (delete it and run this again)' : ' (download removed; run this again)'}`,
    );
  }
  const tmp = join(dir, `.${name}.extract-${process.pid}-${randomBytes(3).toString('hex')}`);
  try {
    await mkdir(tmp);
    await extractArchive(archive, tmp);
    const found = await findDatasetRoot(tmp, name);
    await checkDatasetLayout(found, kind, `${archive} (extracted)`);
    if (await isDir(target)) await rm(target, { recursive: true, force: true }); // only reached with force
    await rename(found, target);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  if (!opts.keepArchive) await rm(archive, { force: true });
  return { dir: target, kind, url, sha256: sha, existed: false };
}
