/** Messages between the Train view (main thread) and its training worker. */

export type VariantName = 'cgan' | 'dcgan' | 'pix2pix';
export type BackendRequest = 'auto' | 'webgpu' | 'webgl' | 'wasm' | 'cpu';

/** The options of a run: the architecture config (as a Node checkpoint's state.json holds it) and the optimiser's. */
export interface TrainSettings {
  variant: VariantName;
  backend: BackendRequest;
  steps: number;
  sampleEvery: number;
  checkpointEvery: number;
  batchSize: number;
  lr: number;
  beta1: number;
  seed: number;
  loss: string;
  /** The networks' options and the sampling options (ema, r1, modeSeeking, dLr), as Node's checkpoints store them. */
  config: Record<string, unknown>;
}

/** Labelled training images: bytes 0..255, [count, size, size, channels]. */
export interface ImageSet {
  images: Uint8Array;
  labels: Int32Array;
  count: number;
  size: number;
  channels: number;
  /** Class names (a conditional model's labels); absent: unlabelled. */
  classNames?: string[];
  /** What the images are, for messages ("MNIST, 60,000 digits"). */
  describe: string;
}

/** Aligned pairs for pix2pix: input and target images, bytes 0..255, [count, size, size, channels] each. */
export interface PairSet {
  a: Uint8Array;
  b: Uint8Array;
  count: number;
  size: number;
  channels: number;
  describe: string;
}

/** A checkpoint as files (relative path → bytes), the layout of a Node run's checkpoint folder. */
export type FileList = [string, Uint8Array][];

export type ToWorker =
  | {
      type: 'start';
      settings: TrainSettings;
      data: ImageSet;
      resume?: { files: FileList; label: string };
      /** A cGAN/DCGAN export (model.json, weights) whose generator the run starts from (D starts fresh). */
      init?: { generator: FileList; label: string };
      /** pix2pix fine-tuning: an exported generator (model.json, weights) and the pairs it trains on. */
      pix2pix?: { generator: FileList; pairs: PairSet };
    }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'backend'; name: string; why: string }
  | { type: 'started'; step: number; stepsPerEpoch: number; resumed: boolean }
  | { type: 'step'; step: number; losses: Record<string, number>; stepsPerSecond: number }
  | { type: 'samples'; step: number; width: number; height: number; rgba: Uint8ClampedArray }
  | { type: 'checkpoint'; step: number; files: FileList }
  | { type: 'done'; step: number; interrupted: boolean }
  | { type: 'error'; message: string };
