import * as tf from '@tensorflow/tfjs';
import { it } from 'vitest';
import { unetGenerator } from '@gantry/core';
import { freeSizeModel } from '../../packages/core/src/fully-conv.js';
it('probe', async () => {
  await tf.setBackend('cpu');
  const unet = unetGenerator({ size: 32, inChannels: 3, outChannels: 3, numDowns: 5, ngf: 4, norm: 'batch', dropout: true });
  const m0 = tf.memory();
  const free = await freeSizeModel(unet);
  const m1 = tf.memory();
  console.log('after', m1.numBytes - m0.numBytes, m1.numTensors - m0.numTensors, (m1 as any).numDataBuffers - (m0 as any).numDataBuffers);
  const wb = free.weights.map(w => (w.read() as any).dataId);
  const wa = unet.weights.map(w => (w.read() as any).dataId);
  console.log('shared', wb.filter((d, i) => d === wa[i]).length, wb.length);
  free.dispose();
  const m2 = tf.memory();
  console.log('disposed', m2.numBytes - m0.numBytes, m2.numTensors - m0.numTensors);
});
