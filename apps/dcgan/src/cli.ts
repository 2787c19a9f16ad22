#!/usr/bin/env node
import { runVariant } from '@gantry/core';
import { dcgan } from '@gantry/dcgan';

await runVariant(dcgan);
