#!/usr/bin/env node
import { cgan } from '@gantry/cgan';
import { runVariant } from '@gantry/core';

await runVariant(cgan);
