#!/usr/bin/env node
import { runCli } from '@gantry/core';
import { gantryCommands } from './commands.js';

await runCli('gantry', gantryCommands);
