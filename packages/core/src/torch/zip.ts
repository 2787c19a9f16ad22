/**
 * The zip container of PyTorch files, read member by member: the central directory is listed (names, sizes,
 * CRC-32s) and a member is only decompressed when asked for, with a cap on what it may inflate to, and its CRC-32
 * checked. fflate's unzipSync inflates every member (and without checking CRCs), which let a small file with
 * large unreferenced deflated members cost gigabytes; Node's zlib (inflateRawSync with maxOutputLength, crc32) does
 * the decompression and the checksum here.
 */
import { crc32, inflateRawSync } from 'node:zlib';

/**
 * A key from the file as messages show it: control characters (a terminal escape, a newline) as `?`, and at most
 * 80 characters (a hostile file's key can be as long as the file).
 */
export function keyName(k: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing them is the point
  const clean = k.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 77)}…` : clean;
}

/** A reading failure of the container (the caller adds the file's name). */
export class ZipFormatError extends Error {}

export interface ZipMember {
  name: string;
  /** 0: stored, 8: deflated. */
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localHeader: number;
}

const u16 = (b: Uint8Array, at: number) => b[at]! | (b[at + 1]! << 8);
const u32 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
/** A little-endian 64-bit size; above 2^53 it cannot be a real size here. */
const u64 = (b: Uint8Array, at: number) => u32(b, at) + u32(b, at + 4) * 2 ** 32;

function need(b: Uint8Array, at: number, n: number, what: string): void {
  if (at < 0 || at + n > b.byteLength) throw new ZipFormatError(`${what} reaches past the end of the file: truncated?`);
}

/** The members of a zip archive by name (a Map: member names are never looked up as object properties). */
export function listZip(b: Uint8Array): Map<string, ZipMember> {
  // The end-of-central-directory record is within the last 64 KiB + 22 bytes (its comment is at most 64 KiB).
  let eocd = -1;
  for (let at = b.byteLength - 22; at >= 0 && at >= b.byteLength - 22 - 0xffff; at--) {
    if (u32(b, at) === 0x06054b50) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) throw new ZipFormatError('no end of central directory: truncated?');
  let count = u16(b, eocd + 10);
  let offset = u32(b, eocd + 16);
  // Zip64: the locator just before the record points at the zip64 end record with the real count and offset.
  if (eocd >= 20 && u32(b, eocd - 20) === 0x07064b50) {
    const z = u64(b, eocd - 12);
    need(b, z, 56, 'the zip64 end record');
    if (u32(b, z) !== 0x06064b50) throw new ZipFormatError('a broken zip64 end record');
    count = u64(b, z + 32);
    offset = u64(b, z + 48);
  }
  // Each central header takes at least 46 bytes: a count the file cannot hold is refused before any loop.
  if (count * 46 > b.byteLength) throw new ZipFormatError(`a central directory of ${count} members: truncated?`);
  const members = new Map<string, ZipMember>();
  let at = offset;
  for (let i = 0; i < count; i++) {
    need(b, at, 46, 'the central directory');
    if (u32(b, at) !== 0x02014b50) throw new ZipFormatError('a broken central directory: truncated?');
    const method = u16(b, at + 10);
    const crc = u32(b, at + 16);
    let compressedSize = u32(b, at + 20);
    let size = u32(b, at + 24);
    const nameLength = u16(b, at + 28);
    const extraLength = u16(b, at + 30);
    const commentLength = u16(b, at + 32);
    let localHeader = u32(b, at + 42);
    need(b, at + 46, nameLength + extraLength, 'the central directory');
    const name = new TextDecoder().decode(b.subarray(at + 46, at + 46 + nameLength));
    // Zip64 extra field: the 64-bit values of the fields saturated at 0xffffffff, in this order.
    for (let e = at + 46 + nameLength; e + 4 <= at + 46 + nameLength + extraLength; ) {
      const id = u16(b, e);
      const len = u16(b, e + 2);
      if (id === 0x0001) {
        let f = e + 4;
        const next = () => {
          need(b, f, 8, 'a zip64 field');
          const v = u64(b, f);
          f += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localHeader === 0xffffffff) localHeader = next();
      }
      e += 4 + len;
    }
    if (members.has(name)) throw new ZipFormatError(`two members named ${keyName(name)}`);
    members.set(name, { name, method, crc, compressedSize, size, localHeader });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return members;
}

/**
 * A member's bytes: stored members are a view into `b` (no copy), deflated ones are inflated to at most
 * `maxBytes` (more, or a size other than the directory's, is refused). The CRC-32 is checked either way.
 */
export function readMember(b: Uint8Array, m: ZipMember, maxBytes: number): Uint8Array {
  if (m.size > maxBytes)
    throw new ZipFormatError(`member ${keyName(m.name)} holds ${m.size} bytes, more than the ${maxBytes} it may`);
  need(b, m.localHeader, 30, `member ${keyName(m.name)}`);
  if (u32(b, m.localHeader) !== 0x04034b50)
    throw new ZipFormatError(`member ${keyName(m.name)}: a broken local header`);
  const start = m.localHeader + 30 + u16(b, m.localHeader + 26) + u16(b, m.localHeader + 28);
  need(b, start, m.compressedSize, `member ${keyName(m.name)}`);
  const raw = b.subarray(start, start + m.compressedSize);
  let data: Uint8Array;
  if (m.method === 0) {
    if (m.compressedSize !== m.size)
      throw new ZipFormatError(`member ${keyName(m.name)}: a stored member whose sizes differ`);
    data = raw;
  } else if (m.method === 8) {
    try {
      data = inflateRawSync(raw, { maxOutputLength: Math.max(1, m.size) });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ZipFormatError(
        code === 'ERR_BUFFER_TOO_LARGE'
          ? `member ${keyName(m.name)} inflates past the ${m.size} bytes its directory entry states`
          : `member ${keyName(m.name)} does not inflate (${(err as Error).message})`,
      );
    }
    if (data.byteLength !== m.size)
      throw new ZipFormatError(
        `member ${keyName(m.name)} inflates to ${data.byteLength} bytes, not the ${m.size} stated`,
      );
  } else {
    throw new ZipFormatError(`member ${keyName(m.name)}: compression method ${m.method} (expected stored or deflate)`);
  }
  if (crc32(data) >>> 0 !== m.crc)
    throw new ZipFormatError(`member ${keyName(m.name)} fails its CRC-32 check: the file is corrupt`);
  return data;
}
