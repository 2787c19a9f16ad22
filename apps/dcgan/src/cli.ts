#!/usr/bin/env node
import { runCli } from '@gantry/core';
import { mnistGanCommands } from '@gantry/mnist';
import { dcgan } from '@gantry/dcgan';

await runCli('dcgan', (y) => mnistGanCommands(y, dcgan));
