#!/usr/bin/env node
import { runCli } from '@gantry/core';
import { pix2pixCommands } from '@gantry/pix2pix';

await runCli('pix2pix', (y) => pix2pixCommands(y));
