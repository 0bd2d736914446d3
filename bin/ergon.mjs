#!/usr/bin/env node
// `npx ergon ...` from a clone: runs the TypeScript CLI (src/client/cli.ts) through tsx, in this process.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/client/cli.ts');
const code = await runCli(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr });
process.exitCode = code;
