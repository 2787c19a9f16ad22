#!/usr/bin/env node
import { runCli } from '@gantry/core';
import { mnistGanCommands } from '@gantry/mnist';
import { gan } from '@gantry/gan';

await runCli('gan', (y) => mnistGanCommands(y, gan));
