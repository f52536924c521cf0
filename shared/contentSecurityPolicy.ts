/**
 * The page's Content-Security-Policy, once for every place that serves it: the desktop shell's
 * app:// handler, serve mode's HTTP responses, and renderer/index.html's meta element (a test
 * checks that one agrees). Everything from the page's own origin, nothing inline, no eval (the
 * Vue templates are precompiled and zod runs jitless). connect-src 'self' also admits serve
 * mode's WebSocket, on the page's own host and port. img-src allows data: for the page's empty
 * favicon (`<link rel="icon" href="data:,">`, which spares a request for one).
 */
const DIRECTIVES: readonly (readonly [string, string])[] = [
  ['default-src', "'self'"],
  ['script-src', "'self'"],
  ['style-src', "'self'"],
  ['img-src', "'self' data:"],
  ['font-src', "'self'"],
  ['connect-src', "'self'"],
  ['object-src', "'none'"],
  ['base-uri', "'none'"],
  ['form-action', "'none'"],
  ['frame-src', "'none'"],
  ['frame-ancestors', "'none'"],
];

/** Directives a browser ignores, with a console warning, when they come in a meta element. */
const HEADER_ONLY = new Set(['frame-ancestors']);

const policy = (directives: readonly (readonly [string, string])[]) =>
  directives.map(([name, sources]) => `${name} ${sources}`).join('; ');

/** The Content-Security-Policy response header. */
export const CONTENT_SECURITY_POLICY = policy(DIRECTIVES);

/** The same policy as index.html's `<meta http-equiv="Content-Security-Policy">` states it. */
export const META_CONTENT_SECURITY_POLICY = policy(DIRECTIVES.filter(([name]) => !HEADER_ONLY.has(name)));
