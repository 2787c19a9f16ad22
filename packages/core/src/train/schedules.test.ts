import { describe, expect, it } from 'vitest';
import { constantLr, decayOverLast, linearDecay } from './schedules.js';

describe('linearDecay', () => {
  it('holds the rate for the constant epochs, then falls linearly to zero', () => {
    const s = linearDecay(2, 2);
    expect([0, 1.9, 2, 3, 4, 5].map(s)).toEqual([1, 1, 1, 0.5, 0, 0]);
  });
  it('never decays with no decay epochs', () => {
    expect([0, 10, 1e6].map(linearDecay(5, 0))).toEqual([1, 1, 1]);
    expect(constantLr(3)).toBe(1);
  });
});

describe('decayOverLast', () => {
  it('decays over the last epochs of the run, never more than the whole run', () => {
    const s = decayOverLast(4, 2);
    expect([0, 1.5, 2, 3, 3.9, 4].map((e) => +s(e).toFixed(6))).toEqual([1, 1, 1, 0.5, 0.05, 0]);
    expect(decayOverLast(4, 0)(3.9)).toBe(1);
    expect(decayOverLast(1, 5)(0.5)).toBeCloseTo(0.5);
  });
});
