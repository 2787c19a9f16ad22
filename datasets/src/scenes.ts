/**
 * Procedural day/night city scenes, for trying pix2pix (aligned pairs) and CycleGAN (unaligned sets) without
 * downloading anything. A seed fixes the geometry (sky, sun/moon position, clouds, skyline, windows, road,
 * street lamps); the mode picks the lighting: the night image is the same scene re-lit (dark sky with stars,
 * moon, moonlit building bodies, some windows lit warm yellow, glowing street lamps), not a darkened copy.
 * Which windows are lit is part of the scene: by day those rooms show curtains.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { check, encodeImage, GantryError, mixSeed, mulberry32, type Rng, uniform } from '@gantry/core';

export type SceneMode = 'day' | 'night';

type RGB = [number, number, number];

interface Building {
  x0: number;
  x1: number;
  top: number;
  color: RGB;
  back: boolean;
  winW: number;
  winH: number;
  pitchX: number;
  pitchY: number;
  marginX: number;
  marginTop: number;
  litProb: number;
  seed: number;
  antenna: number; // antenna height in px (0 = none)
}

interface Scene {
  size: number;
  horizon: number; // first ground row
  sidewalk: number; // rows of sidewalk below the horizon
  sun: { x: number; y: number; r: number; phase: number };
  clouds: { x: number; y: number; rx: number; ry: number }[];
  stars: { x: number; y: number; b: number }[];
  buildings: Building[];
  lamps: { x: number; top: number; dir: number }[];
  dashLen: number;
  dashOffset: number;
  skyTint: number;
}

const PALETTE: RGB[] = [
  [150, 150, 155], // concrete
  [178, 160, 130], // sandstone
  [150, 85, 65], // brick
  [115, 140, 165], // blue glass
  [200, 195, 180], // cream
  [95, 105, 115], // slate
  [165, 120, 95], // terracotta
  [130, 160, 150], // green glass
];

function makeScene(seed: number, size: number): Scene {
  const rng: Rng = mulberry32(mixSeed(seed, 0x5ce9e));
  const S = size;
  const horizon = Math.round(S * uniform(rng, 0.7, 0.8));
  const sidewalk = Math.max(2, Math.round(S * uniform(rng, 0.035, 0.05)));
  const sun = {
    x: S * uniform(rng, 0.1, 0.9),
    y: S * uniform(rng, 0.08, 0.28),
    r: S * uniform(rng, 0.035, 0.06),
    phase: uniform(rng, 0.25, 0.7),
  };
  const clouds: Scene['clouds'] = [];
  const nClouds = Math.floor(uniform(rng, 0, 4));
  for (let c = 0; c < nClouds; c++) {
    const cx = S * uniform(rng, -0.1, 1.1);
    const cy = S * uniform(rng, 0.08, 0.4);
    const w = S * uniform(rng, 0.08, 0.18);
    const puffs = 3 + Math.floor(rng() * 3);
    for (let p = 0; p < puffs; p++) {
      clouds.push({
        x: cx + uniform(rng, -w, w),
        y: cy + uniform(rng, -w * 0.15, w * 0.15),
        rx: w * uniform(rng, 0.4, 0.7),
        ry: w * uniform(rng, 0.22, 0.35),
      });
    }
  }
  const stars: Scene['stars'] = [];
  const nStars = Math.round(S * S * 0.004);
  for (let s = 0; s < nStars; s++)
    stars.push({ x: Math.floor(rng() * S), y: Math.floor(rng() * horizon), b: uniform(rng, 0.45, 1) });

  const buildings: Building[] = [];
  for (const back of [true, false]) {
    let x = -Math.floor(rng() * S * 0.08);
    while (x < S) {
      const w = Math.max(4, Math.round(S * uniform(rng, back ? 0.07 : 0.08, back ? 0.14 : 0.17)));
      const h = Math.round(S * (back ? uniform(rng, 0.25, 0.5) : uniform(rng, 0.12, 0.36)));
      const gap = back ? 0 : Math.round(rng() < 0.3 ? S * uniform(rng, 0.01, 0.05) : 0);
      const winW = Math.max(1, Math.round(S * uniform(rng, 0.01, 0.018)));
      const winH = Math.max(1, Math.round(S * uniform(rng, 0.012, 0.022)));
      buildings.push({
        x0: x,
        x1: x + w,
        top: horizon - h,
        color: PALETTE[Math.floor(rng() * PALETTE.length)]!.map((v) => v + uniform(rng, -15, 15)) as RGB,
        back,
        winW,
        winH,
        pitchX: winW + Math.max(1, Math.round(winW * uniform(rng, 0.6, 1.4))),
        pitchY: winH + Math.max(1, Math.round(winH * uniform(rng, 0.5, 1.2))),
        marginX: Math.max(1, Math.round(w * uniform(rng, 0.08, 0.16))),
        marginTop: Math.max(1, Math.round(S * uniform(rng, 0.012, 0.03))),
        litProb: uniform(rng, back ? 0.15 : 0.2, back ? 0.45 : 0.6),
        seed: Math.floor(rng() * 2 ** 31),
        antenna: rng() < 0.25 ? Math.round(S * uniform(rng, 0.03, 0.08)) : 0,
      });
      x += w + gap;
    }
  }
  const lamps: Scene['lamps'] = [];
  const spacing = S * uniform(rng, 0.22, 0.35);
  const poleH = Math.round(S * uniform(rng, 0.12, 0.17));
  for (let lx = S * uniform(rng, 0.05, 0.2); lx < S; lx += spacing) {
    lamps.push({ x: Math.round(lx), top: horizon + Math.round(sidewalk * 0.6) - poleH, dir: rng() < 0.5 ? -1 : 1 });
  }
  return {
    size: S,
    horizon,
    sidewalk,
    sun,
    clouds,
    stars,
    buildings,
    lamps,
    dashLen: Math.max(2, Math.round(S * uniform(rng, 0.05, 0.09))),
    dashOffset: Math.floor(rng() * S),
    skyTint: uniform(rng, -1, 1),
  };
}

/** Float RGB canvas with simple painting operations. */
class Canvas {
  readonly px: Float32Array;
  constructor(readonly S: number) {
    this.px = new Float32Array(S * S * 3);
  }
  set(x: number, y: number, c: RGB): void {
    if (x < 0 || y < 0 || x >= this.S || y >= this.S) return;
    const i = (y * this.S + x) * 3;
    this.px[i] = c[0];
    this.px[i + 1] = c[1];
    this.px[i + 2] = c[2];
  }
  blend(x: number, y: number, c: RGB, a: number): void {
    if (x < 0 || y < 0 || x >= this.S || y >= this.S || a <= 0) return;
    const i = (y * this.S + x) * 3;
    const p = this.px;
    p[i] = p[i]! + (c[0] - p[i]!) * a;
    p[i + 1] = p[i + 1]! + (c[1] - p[i + 1]!) * a;
    p[i + 2] = p[i + 2]! + (c[2] - p[i + 2]!) * a;
  }
  add(x: number, y: number, c: RGB, k: number): void {
    if (x < 0 || y < 0 || x >= this.S || y >= this.S || k <= 0) return;
    const i = (y * this.S + x) * 3;
    this.px[i] = this.px[i]! + c[0] * k;
    this.px[i + 1] = this.px[i + 1]! + c[1] * k;
    this.px[i + 2] = this.px[i + 2]! + c[2] * k;
  }
  rect(x0: number, y0: number, x1: number, y1: number, c: RGB): void {
    for (let y = Math.max(0, y0); y < Math.min(this.S, y1); y++)
      for (let x = Math.max(0, x0); x < Math.min(this.S, x1); x++) this.set(x, y, c);
  }
  /** Adds a radial glow: colour * strength * (1 - d/r)^2. `sy` squashes it vertically (ellipse). */
  glow(cx: number, cy: number, r: number, c: RGB, strength: number, sy = 1, yMin = 0): void {
    const ry = r * sy;
    for (let y = Math.max(yMin, Math.floor(cy - ry)); y <= Math.min(this.S - 1, Math.ceil(cy + ry)); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x <= Math.min(this.S - 1, Math.ceil(cx + r)); x++) {
        const dx = (x + 0.5 - cx) / r;
        const dy = (y + 0.5 - cy) / ry;
        const d = Math.sqrt(dx * dx + dy * dy);
        if (d < 1) this.add(x, y, c, strength * (1 - d) * (1 - d));
      }
    }
  }
  /** Anti-aliased disc. */
  disc(cx: number, cy: number, r: number, c: RGB): void {
    for (let y = Math.max(0, Math.floor(cy - r - 1)); y <= Math.min(this.S - 1, Math.ceil(cy + r + 1)); y++) {
      for (let x = Math.max(0, Math.floor(cx - r - 1)); x <= Math.min(this.S - 1, Math.ceil(cx + r + 1)); x++) {
        const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
        this.blend(x, y, c, Math.min(1, Math.max(0, r + 0.5 - d)));
      }
    }
  }
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.px.length);
    for (let i = 0; i < out.length; i++) {
      const v = this.px[i]!;
      out[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
    return out;
  }
}

const lerp = (a: RGB, b: RGB, t: number): RGB => [
  a[0] + (b[0] - a[0]) * t,
  a[1] + (b[1] - a[1]) * t,
  a[2] + (b[2] - a[2]) * t,
];
const scale = (a: RGB, k: number): RGB => [a[0] * k, a[1] * k, a[2] * k];
const plus = (a: RGB, b: RGB): RGB => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];

/** Deterministic per-window hash in [0, 1). */
function windowRand(seed: number, col: number, row: number, k: number): number {
  return mixSeed(seed, col, row, k) / 2147483648;
}

function paint(scene: Scene, mode: SceneMode): Uint8Array {
  const { size: S, horizon } = scene;
  const night = mode === 'night';
  const cv = new Canvas(S);

  // Sky.
  const skyTop: RGB = night ? [4, 6, 20 + 4 * scene.skyTint] : [55 + 10 * scene.skyTint, 115, 200];
  const skyLow: RGB = night ? [20, 24, 52] : [170 + 10 * scene.skyTint, 205, 238];
  for (let y = 0; y < horizon; y++) {
    const t = y / horizon;
    let c = lerp(skyTop, skyLow, t * t);
    if (night) c = plus(c, scale([30, 18, 10], Math.exp(-(horizon - y) / (0.12 * S)))); // city glow on the horizon
    for (let x = 0; x < S; x++) cv.set(x, y, c);
  }

  // Stars (night), sun or moon.
  const { sun } = scene;
  if (night) {
    for (const s of scene.stars) {
      if (Math.hypot(s.x - sun.x, s.y - sun.y) < sun.r * 2.5) continue;
      const b = s.b * Math.min(1, (horizon - s.y) / (0.25 * S)); // fade into the horizon haze
      cv.blend(s.x, s.y, [235, 235, 255], b);
    }
    cv.glow(sun.x, sun.y, sun.r * 3.5, [120, 130, 160], 0.35);
    cv.disc(sun.x, sun.y, sun.r * 0.85, [235, 232, 210]);
    // Crescent: an offset disc of sky colour covers part of the moon.
    const off = sun.r * 0.85 * (2 * sun.phase);
    const sky = lerp(skyTop, skyLow, (sun.y / horizon) ** 2);
    for (let y = Math.floor(sun.y - sun.r); y <= Math.ceil(sun.y + sun.r); y++) {
      for (let x = Math.floor(sun.x - sun.r); x <= Math.ceil(sun.x + sun.r); x++) {
        const dm = Math.hypot(x + 0.5 - sun.x, y + 0.5 - sun.y);
        const ds = Math.hypot(x + 0.5 - sun.x - off, y + 0.5 - sun.y + off * 0.3);
        if (dm < sun.r * 0.85 + 0.5 && ds < sun.r * 0.8) cv.blend(x, y, sky, Math.min(1, sun.r * 0.8 - ds) * 0.9);
      }
    }
  } else {
    cv.glow(sun.x, sun.y, sun.r * 4, [255, 240, 190], 0.45);
    cv.disc(sun.x, sun.y, sun.r, [255, 250, 228]);
  }

  // Clouds.
  const cloudC: RGB = night ? [38, 42, 62] : [246, 246, 250];
  for (const c of scene.clouds) {
    for (let y = Math.max(0, Math.floor(c.y - c.ry)); y <= Math.min(horizon - 1, Math.ceil(c.y + c.ry)); y++) {
      for (let x = Math.max(0, Math.floor(c.x - c.rx)); x <= Math.min(S - 1, Math.ceil(c.x + c.rx)); x++) {
        const dx = (x + 0.5 - c.x) / c.rx;
        const dy = (y + 0.5 - c.y) / c.ry;
        const d = dx * dx + dy * dy;
        if (d < 1) {
          const shade = night ? cloudC : lerp(cloudC, [200, 205, 215], Math.max(0, dy) * 0.8); // grey undersides by day
          cv.blend(x, y, shade, Math.min(1, (1 - d) * 3) * (night ? 0.8 : 0.95));
        }
      }
    }
  }

  // Buildings, back row first. Sun/moon side decides which face is lit.
  const lightFromLeft = sun.x < S / 2;
  const haze: RGB = night ? [18, 22, 45] : skyLow;
  for (const b of scene.buildings) {
    const w = b.x1 - b.x0;
    let body: RGB;
    if (night)
      body = plus(scale(b.color, 0.1), [6, 8, 18]); // moonlit: dark, bluish
    else body = b.color;
    if (b.back) body = lerp(body, haze, night ? 0.35 : 0.4);
    const shadeW = Math.max(1, Math.round(w * 0.18));
    for (let y = Math.max(0, b.top); y < horizon; y++) {
      for (let x = Math.max(0, b.x0); x < Math.min(S, b.x1); x++) {
        const onShadedSide = lightFromLeft ? x >= b.x1 - shadeW : x < b.x0 + shadeW;
        cv.set(x, y, onShadedSide ? scale(body, night ? 0.75 : 0.8) : body);
      }
    }
    // Roof edge and antenna.
    const roof = night ? plus(body, [10, 11, 16]) : scale(body, 0.85);
    for (let x = Math.max(0, b.x0); x < Math.min(S, b.x1); x++) cv.set(x, b.top, roof);
    if (b.antenna) {
      const ax = Math.round((b.x0 + b.x1) / 2);
      for (let y = b.top - b.antenna; y < b.top; y++) cv.set(ax, y, night ? [20, 20, 28] : [70, 70, 75]);
      if (night) cv.set(ax, b.top - b.antenna, [255, 40, 30]); // aircraft warning light
    }
    // Windows.
    const y0 = b.top + b.marginTop;
    const y1 = horizon - Math.max(b.pitchY, Math.round(S * 0.02));
    const x0 = b.x0 + b.marginX;
    const x1 = b.x1 - b.marginX;
    for (let row = 0, wy = y0; wy + b.winH <= y1; row++, wy += b.pitchY) {
      for (let col = 0, wx = x0; wx + b.winW <= x1; col++, wx += b.pitchX) {
        let c: RGB;
        // Rooms lit at night are the occupied ones; by day their curtains show (warm, not reflecting the sky),
        // so which windows light up is visible in the day image, as it would be to a person looking at it.
        const lit = windowRand(b.seed, col, row, 1) < b.litProb;
        if (night) {
          if (lit) {
            const warmth = windowRand(b.seed, col, row, 2);
            const k = 0.8 + 0.2 * windowRand(b.seed, col, row, 3);
            c = warmth < 0.08 ? scale([170, 200, 240], k) : scale([255, 200 + 25 * warmth, 95 + 50 * warmth], k);
            if (b.back) c = scale(c, 0.85);
          } else c = [9, 11, 20];
        } else {
          const r = windowRand(b.seed, col, row, 4);
          c = lerp([62, 82, 110], skyLow, 0.12 + 0.3 * r); // glass reflecting the sky
          if (lit) c = lerp(c, [205, 150, 90], 0.75); // drawn curtains, lit from inside at night
          if (b.back) c = lerp(c, haze, 0.4);
        }
        cv.rect(wx, wy, wx + b.winW, wy + b.winH, c);
      }
    }
  }

  // Ground: sidewalk, curb, road with centre dashes.
  const walkC: RGB = night ? [30, 30, 36] : [172, 170, 162];
  const curbC: RGB = night ? [22, 22, 26] : [120, 118, 112];
  const roadC: RGB = night ? [14, 15, 20] : [78, 78, 84];
  const dashC: RGB = night ? [70, 68, 55] : [238, 232, 200];
  const curb = horizon + scene.sidewalk;
  const mid = Math.round((curb + 1 + S) / 2);
  for (let y = horizon; y < S; y++) {
    for (let x = 0; x < S; x++) {
      let c = y < curb ? walkC : y === curb ? curbC : roadC;
      if (y > curb && !night) c = lerp(roadC, [95, 95, 100], (y - curb) / (S - curb)); // lighter towards the viewer
      if (y === mid && (x + scene.dashOffset) % (2 * scene.dashLen) < scene.dashLen) c = dashC;
      cv.set(x, y, c);
    }
  }

  // Street lamps.
  const armLen = Math.max(2, Math.round(S * 0.03));
  for (const l of scene.lamps) {
    const poleC: RGB = night ? [18, 18, 22] : [55, 58, 62];
    for (let y = l.top; y < horizon + Math.round(scene.sidewalk * 0.6); y++) cv.set(l.x, y, poleC);
    for (let k = 0; k <= armLen; k++) cv.set(l.x + l.dir * k, l.top, poleC);
    const hx = l.x + l.dir * armLen;
    if (night) {
      cv.glow(hx + 0.5, l.top + 1.5, S * 0.13, [255, 185, 95], 0.55);
      cv.glow(hx + 0.5, curb + S * 0.04, S * 0.14, [255, 190, 110], 0.35, 0.35, horizon); // pool of light
      cv.rect(hx - 1, l.top + 1, hx + 2, l.top + 2, [255, 240, 190]);
    } else cv.rect(hx - 1, l.top + 1, hx + 2, l.top + 2, [200, 200, 190]);
  }
  return cv.toBytes();
}

/** Renders one size x size RGB scene (HWC bytes). The same seed gives the same scene in both modes. */
export function renderScene(seed: number, size: number, mode: SceneMode): Uint8Array {
  check(
    Number.isInteger(size) && size >= 16 && size <= 4096,
    `renderScene: size must be an integer in 16..4096, got ${size}`,
  );
  check(mode === 'day' || mode === 'night', `renderScene: mode must be 'day' or 'night', got '${mode}'`);
  return paint(makeScene(seed, size), mode);
}

/** Side-by-side A|B (A on the left), both size x size RGB. */
export function sideBySide(a: Uint8Array, b: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size * size * 6);
  const row = size * 3;
  for (let y = 0; y < size; y++) {
    out.set(a.subarray(y * row, (y + 1) * row), y * 2 * row);
    out.set(b.subarray(y * row, (y + 1) * row), y * 2 * row + row);
  }
  return out;
}

export interface SceneDatasetOptions {
  /** Total images (aligned: pairs over all splits; unaligned: images per domain). */
  count: number;
  /** Scene size in pixels (default 256). */
  size?: number;
  /** Base seed (default 0). */
  seed?: number;
  /** Replace `root` if it exists (default false: a non-empty `root` is an error). */
  overwrite?: boolean;
}

export interface AlignedSceneOptions extends SceneDatasetOptions {
  /** Fractions of `count` per split (default train 0.8, val 0.1, test 0.1; test gets the remainder). */
  splits?: { train?: number; val?: number; test?: number };
}

export interface UnalignedSceneOptions extends SceneDatasetOptions {
  /** Images in domain B (night); default `count`. */
  countB?: number;
  /** Fraction of each domain held out in testA/testB (default 0.1). */
  testFraction?: number;
}

function fileName(i: number, total: number): string {
  return `${String(i).padStart(Math.max(4, String(total - 1).length), '0')}.png`;
}

/** Runs `jobs` with at most `limit` in flight. */
async function runPool(n: number, limit: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

/**
 * Builds a dataset in a temporary sibling folder, then renames it to `root`, so an interrupted run never
 * leaves a half-written dataset at `root`.
 */
async function buildAtomically(root: string, overwrite: boolean, build: (dir: string) => Promise<void>): Promise<void> {
  const target = resolve(root);
  const exists = await stat(target).then(
    (s) => s,
    () => undefined,
  );
  if (exists) {
    if (!exists.isDirectory())
      throw new GantryError(`${root}: exists and is not a folder (expected a new dataset folder)`);
    const empty = (await readdir(target)).length === 0;
    if (!empty && !overwrite)
      throw new GantryError(`${root}: already exists and is not empty (delete it or pass overwrite)`);
  }
  await mkdir(dirname(target), { recursive: true });
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`);
  try {
    await mkdir(tmp);
    await build(tmp);
    if (exists) {
      const old = `${tmp}-old`;
      await rename(target, old);
      await rename(tmp, target);
      await rm(old, { recursive: true, force: true });
    } else await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

function checkCommon(o: SceneDatasetOptions): { count: number; size: number; seed: number } {
  const size = o.size ?? 256;
  const seed = o.seed ?? 0;
  check(Number.isInteger(o.count) && o.count > 0, `scenes: count must be a positive integer, got ${o.count}`);
  check(
    Number.isInteger(size) && size >= 16 && size <= 4096,
    `scenes: size must be an integer in 16..4096, got ${size}`,
  );
  check(Number.isInteger(seed), `scenes: seed must be an integer, got ${seed}`);
  return { count: o.count, size, seed };
}

/**
 * Writes a pix2pix ALIGNED dataset: `<root>/{train,val,test}/NNNN.png`, each image A|B side by side with
 * A = night and B = day (the night2day convention; use direction BtoA to learn day -> night).
 * Pair i (over all splits) uses scene seed mixSeed(seed, i).
 */
export async function writeAlignedDataset(
  root: string,
  opts: AlignedSceneOptions,
): Promise<{ train: number; val: number; test: number }> {
  const { count, size, seed } = checkCommon(opts);
  const fr = { train: 0.8, val: 0.1, test: 0.1, ...opts.splits };
  for (const [k, v] of Object.entries(fr))
    check(v >= 0 && v <= 1, `scenes: splits.${k} must be a fraction in [0, 1], got ${v}`);
  check(
    Math.abs(fr.train + fr.val + fr.test - 1) < 1e-6,
    `scenes: splits must sum to 1, got ${fr.train + fr.val + fr.test}`,
  );
  const train = Math.round(count * fr.train);
  const val = Math.min(count - train, Math.round(count * fr.val));
  const counts = { train, val, test: count - train - val };
  const starts = { train: 0, val: train, test: train + val };
  await buildAtomically(root, opts.overwrite ?? false, async (dir) => {
    for (const split of ['train', 'val', 'test'] as const) {
      const n = counts[split];
      if (n === 0) continue;
      await mkdir(join(dir, split));
      await runPool(n, 4, async (i) => {
        const s = mixSeed(seed, starts[split] + i);
        const scene = makeScene(s, size);
        const ab = sideBySide(paint(scene, 'night'), paint(scene, 'day'), size);
        const png = await encodeImage({ data: ab, width: 2 * size, height: size, channels: 3 }, 'png');
        await writeFile(join(dir, split, fileName(i, n)), png);
      });
    }
  });
  return counts;
}

/**
 * Writes a CycleGAN UNALIGNED dataset: `<root>/{trainA,trainB,testA,testB}/NNNN.png`, day scenes in A and
 * night scenes in B, drawn from different seeds (mixSeed(seed, 1, i) for A, mixSeed(seed, 2, i) for B), so
 * there are no pairs.
 */
export async function writeUnalignedDataset(
  root: string,
  opts: UnalignedSceneOptions,
): Promise<{ trainA: number; trainB: number; testA: number; testB: number }> {
  const { count, size, seed } = checkCommon(opts);
  const countB = opts.countB ?? count;
  check(Number.isInteger(countB) && countB > 0, `scenes: countB must be a positive integer, got ${countB}`);
  const tf = opts.testFraction ?? 0.1;
  check(tf >= 0 && tf < 1, `scenes: testFraction must be in [0, 1), got ${tf}`);
  const testA = Math.round(count * tf);
  const testB = Math.round(countB * tf);
  const counts = { trainA: count - testA, trainB: countB - testB, testA, testB };
  await buildAtomically(root, opts.overwrite ?? false, async (dir) => {
    for (const [domain, mode, stream, total, nTest] of [
      ['A', 'day', 1, count, testA],
      ['B', 'night', 2, countB, testB],
    ] as const) {
      const nTrain = total - nTest;
      for (const [split, n, start] of [
        ['train', nTrain, 0],
        ['test', nTest, nTrain],
      ] as const) {
        if (n === 0) continue;
        await mkdir(join(dir, `${split}${domain}`));
        await runPool(n, 4, async (i) => {
          const img = renderScene(mixSeed(seed, stream, start + i), size, mode);
          const png = await encodeImage({ data: img, width: size, height: size, channels: 3 }, 'png');
          await writeFile(join(dir, `${split}${domain}`, fileName(i, n)), png);
        });
      }
    }
  });
  return counts;
}
