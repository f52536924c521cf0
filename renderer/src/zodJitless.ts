/**
 * zod compiles fast parsers with `new Function` unless told not to; this page's CSP forbids
 * eval (and would log a violation for the probe). The setting is read when a schema is built,
 * so this module is imported before anything that builds one.
 */
import { z } from 'zod';

z.config({ jitless: true });
