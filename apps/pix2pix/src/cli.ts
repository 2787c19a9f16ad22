#!/usr/bin/env node
import { runVariant } from '@gantry/core';
import { pix2pix } from '@gantry/pix2pix';

await runVariant(pix2pix);
