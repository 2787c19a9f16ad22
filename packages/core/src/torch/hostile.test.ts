/**
 * Issue #40: hostile model files. Every file is made here (pickle-writer.ts), small, and must be refused with a
 * one-line reason before Gantry allocates what it declares.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { networkFromStateDict } from './mapping.js';
import { contiguous, type FakeTensor, ownStorages, statePickle, torchZip, unetShapes } from './pickle-writer.js';
import { keyName, readStateDict, TORCH_LIMITS, TorchFormatError } from './reader.js';
import { listZip } from './zip.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

/** The heap and external memory grown by `fn` (which is expected to throw), in MB. */
function grownMB(fn: () => unknown): number {
  const before = process.memoryUsage();
  try {
    fn();
  } catch {}
  const after = process.memoryUsage();
  return (
    (after.heapUsed + after.external + after.arrayBuffers - before.heapUsed - before.external - before.arrayBuffers) /
    2 ** 20
  );
}

describe('the reading budget', () => {
  it('refuses a broadcast (stride-0) first convolution declaring 512 channels, before building anything', () => {
    const shapes = unetShapes(512);
    const tensors: Record<string, FakeTensor> = {};
    for (const [k, size] of Object.entries(shapes))
      tensors[k] = { storage: k, numel: 1, size, stride: size.map(() => 0) };
    const file = torchZip(tensors);
    expect(file.byteLength).toBeLessThan(32_000);
    expect(() => readStateDict(file)).toThrow(
      /^model\.model\.0\.weight: size \[512, 3, 4, 4\] has 24576 elements, more than its storage model\.model\.0\.weight holds \(1\)/,
    );
    expect(grownMB(() => readStateDict(file))).toBeLessThan(50);
  });

  it('refuses three keys sharing one stride-0 storage of 2^28 elements, at once', () => {
    const t: FakeTensor = { storage: '0', numel: 1, size: [2 ** 14, 2 ** 14], stride: [0, 0] };
    const file = zipSync({ 'a/data.pkl': statePickle({ a: t, b: t, c: t }), 'a/data/0': new Uint8Array(4) });
    expect(file.byteLength).toBeLessThan(1024);
    const start = performance.now();
    expect(() => readStateDict(file)).toThrow(
      /^a: size \[16384, 16384\] has 268435456 elements, more than its storage 0/,
    );
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('counts a shared storage once: tensors that overlap in it are refused', () => {
    const t: FakeTensor = { storage: '0', numel: 1000, size: [1000] };
    expect(() => readStateDict(torchZip({ a: t, b: t, c: t }))).toThrow(
      /^its tensors have 3000 elements, more than their 1 storages hold \(1000\)/,
    );
    // Disjoint views of one storage (a flat parameter buffer) are a state dict's.
    const sd = readStateDict(
      torchZip(
        { a: { ...t, size: [500] }, b: { ...t, size: [500], offset: 500 } },
        { data: { '0': new Uint8Array(4000) } },
      ),
    );
    expect([...sd.keys()]).toEqual(['a', 'b']);
  });

  it('refuses a tensor or a total over the element limits', () => {
    const big = 2 ** 28 + 1;
    expect(() =>
      readStateDict(torchZip({ a: { storage: '0', numel: big, size: [big] } }, { data: { '0': new Uint8Array(8) } })),
    ).toThrow(/^a: 268435457 elements \(at most 268435456\)/);
    expect(TORCH_LIMITS.totalElements).toBe(2 ** 29);
  });

  it('refuses sizes that are not integers below 2^31 and names the tensor, not a flag', () => {
    const file = torchZip({ 'model.model.0.weight': { storage: '0', numel: 1, size: [1.5e300, 0], stride: [1, 1] } });
    expect(() => readStateDict(file)).toThrow(
      /^a tensor of size \[1\.5e\+300, 0\], stride \[1, 1\], offset 0: each must be an integer in 0\.\.2\^31-1/,
    );
    expect(() => readStateDict(torchZip({ a: { storage: '0', numel: 1, size: [1, 1, 1, 1, 1, 1, 1, 1, 1] } }))).toThrow(
      /^a tensor of 9 dimensions \(at most 8\)/,
    );
    // A zero width read from the file is blamed on the file's tensor.
    const shapes = unetShapes(1);
    shapes['model.model.0.weight'] = [1, 0, 4, 4];
    const sd = readStateDict(torchZip(ownStorages(shapes)));
    expect(() => networkFromStateDict(sd)).toThrow(
      /^model\.model\.0\.weight: shape \[1, 0, 4, 4\] in the file gives 0 input channels/,
    );
  });

  it('checks every shape against the architecture before building it at the declared width', () => {
    // The first convolution says ngf 512 (with real data): building unet_128 at that width would take gigabytes.
    const shapes = unetShapes(1);
    shapes['model.model.0.weight'] = [512, 3, 4, 4];
    const sd = readStateDict(torchZip(ownStorages(shapes)));
    const before = tf.memory().numBytes;
    const start = performance.now();
    expect(() => networkFromStateDict(sd)).toThrow(
      /^model\.model\.1\.model\.1\.weight: shape \[2, 1, 4, 4\] in the file, \[1024, 512, 4, 4\] expected by unet_128 \(ngf 512/,
    );
    expect(performance.now() - start).toBeLessThan(2000);
    expect(tf.memory().numBytes).toBe(before);
  });
});

describe('messages', () => {
  it('show a hostile key without control characters and at most 80 characters long', () => {
    const key = `\u001b[2J${'k'.repeat(5000)}`;
    const err = (() => {
      try {
        readStateDict(torchZip({ [key]: { storage: '0', numel: 1, size: [4], stride: [0] } }));
      } catch (e) {
        return (e as Error).message;
      }
    })()!;
    expect(err).toMatch(/^\?\[2Jk+…: size \[4\] has 4 elements/);
    expect(err.length).toBeLessThan(250);
    expect(keyName('a\nb')).toBe('a?b');
  });
});

describe('zip members', () => {
  const ok = () => ownStorages(unetShapes(1));

  it('never inflates members no tensor refers to', () => {
    // Garbage "deflated" members that claim 1 GiB each: reading them would fail or cost gigabytes.
    const file = torchZip(ok(), { extra: { 'archive/data/x1': new Uint8Array(100).fill(7) } });
    const patched = patchMember(file, 'archive/data/x1', { method: 8, size: 2 ** 30 });
    const sd = readStateDict(patched);
    expect(sd.size).toBe(Object.keys(unetShapes(1)).length);
  });

  it('inflates a referenced member to its storage size at most, and caps all inflation', () => {
    // 4 MiB of zeros deflate to about 4 KB: a bomb against the 16 × file size + 1 MiB cap.
    const n = 2 ** 20;
    const bomb = torchZip({ a: { storage: '0', numel: n, size: [n] } }, { level: 9 });
    expect(bomb.byteLength).toBeLessThan(64 * 1024);
    expect(() => readStateDict(bomb)).toThrow(
      /deflated members inflate to more than 16 × the file's size: a zip bomb\?/,
    );
    // A member whose directory entry states more bytes than its storage declares.
    const t: FakeTensor = { storage: '0', numel: 4, size: [4] };
    const big = torchZip({ a: t }, { data: { '0': new Uint8Array(64) } });
    expect(() => readStateDict(big)).toThrow(/member archive\/data\/0 holds 64 bytes, more than the 16 it may/);
    // A deflate stream longer than its directory entry says.
    const lying = patchMember(torchZip({ a: t }, { level: 9 }), 'archive/data/0', {
      method: 8,
      data: deflateRawSync(new Uint8Array(1 << 20)),
      size: 16,
    });
    expect(() => readStateDict(lying)).toThrow(/inflates past the 16 bytes its directory entry states/);
  });

  it('checks the CRC-32 of every member it reads', () => {
    const file = new Uint8Array(fs.readFileSync(path.join(FIXTURES, 'ok_resnet6.pth')));
    const m =
      listZip(file).get('ok_resnet6/data/0') ?? [...listZip(file).values()].find((e) => /\/data\/\d+$/.test(e.name))!;
    const start =
      m.localHeader +
      30 +
      (file[m.localHeader + 26]! | (file[m.localHeader + 27]! << 8)) +
      (file[m.localHeader + 28]! | (file[m.localHeader + 29]! << 8));
    file[start + 5]! ^= 0x40;
    expect(() => readStateDict(file)).toThrow(
      new RegExp(`member ${m.name} fails its CRC-32 check: the file is corrupt`),
    );
  });
});

describe('the allow-list holds against JavaScript property names', () => {
  for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
    it(`refuses torch.${name} as a storage type`, () => {
      const file = torchZip({ a: { storage: '0', type: name, numel: 4, size: [4] } });
      expect(() => readStateDict(file)).toThrow(
        new TorchFormatError(`refers to torch.${name}, which a state dict of float tensors does not use`),
      );
    });
  }

  it('refuses object-property names as module globals too', () => {
    for (const [mod, fn] of [
      ['collections', 'constructor'],
      ['torch._utils', '__proto__'],
      ['__proto__', 'constructor'],
    ]) {
      const pkl = new Uint8Array([0x80, 2, 0x63, ...new TextEncoder().encode(`${mod}\n${fn}\n`), 0x29, 0x52, 0x2e]);
      expect(() => readStateDict(zipSync({ 'a/data.pkl': pkl }))).toThrow(
        /which a state dict of float tensors does not use/,
      );
    }
  });

  it('a look-alike made by BUILD setting __proto__ is not taken for a tensor', () => {
    // d = {}; l = []; BUILD l with {'__proto__': <a real tensor>}; d['w'] = l
    const real = statePickle({ w: { storage: '0', numel: 4, size: [4], stride: contiguous([4]) } });
    // The tensor expression of `real` sits between its key and the final SETITEMS/STOP: reuse it as the state.
    const body = [...real.subarray(4, real.length - 2)]; // after PROTO, EMPTY_DICT, MARK; before SETITEMS, STOP
    const key = body.slice(0, 5 + 1); // BINUNICODE 'w'
    const tensor = body.slice(6);
    const enc = (t: string) => [0x58, t.length, 0, 0, 0, ...new TextEncoder().encode(t)];
    const pkl = new Uint8Array([
      0x80,
      2,
      0x7d,
      0x28,
      ...key,
      0x5d, // EMPTY_LIST
      0x7d,
      0x28,
      ...enc('__proto__'),
      ...tensor,
      0x75, // {'__proto__': tensor}
      0x62, // BUILD
      0x75,
      0x2e,
    ]);
    const file = zipSync({ 'a/data.pkl': pkl, 'a/data/0': new Uint8Array(16) });
    expect(() => readStateDict(file)).toThrow(/not a state dict \('w' is not a tensor\)|corrupt pickle/);
  });
});

/** Rewrites a member's central and local headers (method, sizes) and optionally its data, keeping the layout valid. */
function patchMember(
  file: Uint8Array,
  name: string,
  p: { method: number; size: number; data?: Uint8Array },
): Uint8Array {
  // Rebuild the archive by hand: fflate cannot write headers that lie.
  const members = [...listZip(file).values()];
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const lh = m.localHeader;
    const start = lh + 30 + (file[lh + 26]! | (file[lh + 27]! << 8)) + (file[lh + 28]! | (file[lh + 29]! << 8));
    let data = Buffer.from(file.subarray(start, start + m.compressedSize));
    let method = m.method;
    let size = m.size;
    let crc = m.crc;
    if (m.name === name) {
      method = p.method;
      size = p.size;
      if (p.data) data = Buffer.from(p.data);
      crc = 0;
    }
    const n = Buffer.from(m.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(n.length, 26);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(data.length, 20);
    c.writeUInt32LE(size, 24);
    c.writeUInt16LE(n.length, 28);
    c.writeUInt32LE(offset, 42);
    chunks.push(local, n, data);
    central.push(c, n);
    offset += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...chunks, cd, end]));
}
