#!/usr/bin/env node
// The CLI runs the TypeScript sources through tsx, so `npx mw-studio` needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../electron/cli/main.ts');
