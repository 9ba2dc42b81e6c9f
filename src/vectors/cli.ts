#!/usr/bin/env node
/** `npm run vectors`: see command.ts. */
import { vectorsCommand } from './command.js';

process.exitCode = vectorsCommand(process.argv.slice(2), { log: (l) => console.log(l), error: (l) => console.error(l) });
