#!/usr/bin/env node
import { runVariant } from '@gantry/core';
import { cgan } from '@gantry/cgan';

await runVariant(cgan);
