import * as tf from '@tensorflow/tfjs';
import * as core from '@gantry/core';
const [size, ngf, ndf, blocks, dlayers] = process.argv.slice(2).map(Number);
await core.initBackend({});
core.seedWeights(1);
const G = () => core.resnetGenerator({ size, inChannels: 3, outChannels: 3, ngf, blocks, norm: 'instance' });
const D = () => core.patchDiscriminator({ size, inChannels: 3, ndf, layers: dlayers, norm: 'instance' });
const gA = G(), gB = G(), dA = D(), dB = D();
const optG = core.adam(), optD = core.adam();
const loss = core.adversarialLoss('lsgan');
const a = tf.randomUniform([1, size, size, 3], -1, 1), b = tf.randomUniform([1, size, size, 3], -1, 1);
for (let i = 0; i < 4; i++) {
  const t0 = Date.now();
  const r = core.optimize(optG, [gA, gB], () => {
    const fB = gA.apply(a), fA = gB.apply(b);
    const rA = gB.apply(fB), rB = gA.apply(fA);
    const iA = gB.apply(a), iB = gA.apply(b);
    const g = tf.addN([loss.generator(dA.apply(fB)), loss.generator(dB.apply(fA)), tf.mul(10, core.l1(rA, a)), tf.mul(10, core.l1(rB, b)), tf.mul(5, core.l1(iA, a)), tf.mul(5, core.l1(iB, b))]);
    return { G: g };
  }, 'G');
  const t1 = Date.now();
  const fB = tf.tidy(() => gA.apply(a)), fA = tf.tidy(() => gB.apply(b));
  const t2 = Date.now();
  const d = core.optimize(optD, [dA, dB], () => ({ D: tf.add(loss.discriminator(dA.apply(b), dA.apply(fB)), loss.discriminator(dB.apply(a), dB.apply(fA))) }), 'D');
  await r.G.data(); await d.D.data();
  const t3 = Date.now();
  tf.dispose([r.G, d.D, fA, fB]);
  console.log(`size ${size} ngf ${ngf} ndf ${ndf} blocks ${blocks}: G ${t1 - t0} ms, fakes ${t2 - t1} ms, D ${t3 - t2} ms, total ${t3 - t0} ms, tensors ${tf.memory().numTensors}`);
}
