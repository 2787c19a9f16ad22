import * as tf from '@tensorflow/tfjs';
import * as core from '@gantry/core';
const [size, ngf, blocks] = process.argv.slice(2).map(Number);
await core.initBackend({});
const gA = core.resnetGenerator({ size, inChannels: 3, outChannels: 3, ngf, blocks, norm: 'instance' });
const opt = core.adam();
const a = tf.randomUniform([1, size, size, 3], -1, 1);
const step = () => core.optimize(opt, [gA], () => ({ G: core.l1(gA.apply(a), a) }), 'G');
tf.dispose(step());
const info = await tf.profile(() => { const r = step(); return r.G; });
const agg = {};
for (const k of info.kernels) { const t = await k.kernelTimeMs; const v = typeof t === 'number' ? t : 0; agg[k.name] = (agg[k.name] ?? 0) + v; }
console.log(Object.entries(agg).sort((x, y) => y[1] - x[1]).slice(0, 15).map(([k, v]) => `${k} ${v.toFixed(1)}`).join('\n'));
const t0 = Date.now(); const r = step(); await r.G.data(); console.log('step', Date.now() - t0);
