/**
 * The processor, as every benchmark prints it. Under KVM the model name alone can be just "AMD EPYC" for
 * processors whose training steps differ 1.5× in speed, so on Linux the name gets the CPU family, the model and
 * the widest vector extension from /proc/cpuinfo: "AMD EPYC (family 26, model 2, AVX-512)".
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

export function cpuName() {
  const name = os.cpus()[0]?.model?.trim() || 'unknown CPU';
  let info;
  try {
    info = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return name;
  }
  // The first processor's fields: "cpu family\t: 26", "model\t\t: 2" ("model name" does not match), "flags\t: …".
  const field = (key) => info.match(new RegExp(`^${key}\\s*:\\s*(.*)$`, 'm'))?.[1]?.trim();
  const flags = new Set((field('flags') ?? field('Features') ?? '').split(/\s+/));
  const vector = flags.has('avx512f') ? 'AVX-512' : flags.has('avx2') ? 'AVX2' : flags.has('asimd') ? 'NEON' : null;
  const family = field('cpu family');
  const model = field('model');
  const parts = [family && `family ${family}`, model && `model ${model}`, vector].filter(Boolean);
  return parts.length ? `${name} (${parts.join(', ')})` : name;
}
