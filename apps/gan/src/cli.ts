#!/usr/bin/env node
import { runVariant } from '@gantry/core';
import { gan } from '@gantry/gan';

await runVariant(gan);
