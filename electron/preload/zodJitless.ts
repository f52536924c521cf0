/**
 * zod compiles fast parsers with `new Function` unless told not to, and the page's CSP (which
 * the preload's isolated world shares) forbids eval. The setting is read when a schema is
 * built, so the preload imports this before anything that builds one.
 */
import { z } from 'zod';

z.config({ jitless: true });
