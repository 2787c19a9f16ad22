#!/usr/bin/env node
import { runCli } from '@gantry/core';
import { cgan } from '@gantry/cgan';
import { mnistGanCommands } from '@gantry/mnist';

await runCli('cgan', (y) => mnistGanCommands(y, cgan));
