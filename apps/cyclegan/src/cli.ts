#!/usr/bin/env node
import { runVariant } from '@gantry/core';
import { cyclegan } from '@gantry/cyclegan';

await runVariant(cyclegan);
