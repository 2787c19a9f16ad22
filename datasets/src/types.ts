import type { imagesToTensor, int32Tensor1d } from '@gantry/core';

// @tensorflow/tfjs is a dependency of @gantry/core, not of this package, so tensor types are taken from core's helpers.
/** tf.Tensor4D. */
export type Tensor4D = ReturnType<typeof imagesToTensor>;
/** tf.Tensor1D. */
export type Tensor1D = ReturnType<typeof int32Tensor1d>;
