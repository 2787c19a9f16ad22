#!/usr/bin/env node
import { runCli } from '@gantry/core';
import { cycleganCommands } from '@gantry/cyclegan';

await runCli('cyclegan', (y) => cycleganCommands(y));
