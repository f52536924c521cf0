/**
 * A remote studio the desktop app connects to: `mw-studio serve` on another machine (a cluster's
 * login node), reached through an SSH tunnel on this machine's loopback address, with the
 * session token it printed. Only loopback addresses are taken: the token travels in the clear
 * over http, which is safe only inside the tunnel.
 */
import { z } from 'zod';

const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '[::1]'];

export const RemoteStudioSchema = z
  .object({
    /** "http://127.0.0.1:5178": the tunnel's local end. */
    address: z
      .string()
      .trim()
      .max(200)
      .transform((text, context) => {
        let url: URL;
        try {
          url = new URL(text);
        } catch {
          context.addIssue({ code: 'custom', message: 'the address is like http://127.0.0.1:5178' });
          return z.NEVER;
        }
        if (url.protocol !== 'http:' || !LOOPBACK_HOSTS.includes(url.hostname) || !url.port) {
          context.addIssue({
            code: 'custom',
            message:
              "the address is this machine's end of an SSH tunnel, like http://127.0.0.1:5178 (ssh -N -L 5178:127.0.0.1:5178 login-node)",
          });
          return z.NEVER;
        }
        return url.origin;
      }),
    /** The session token `mw-studio serve` printed. */
    token: z
      .string()
      .trim()
      .regex(
        /^[A-Za-z0-9_-]{16,200}$/,
        'the token is the letters and digits after ?token= in the address serve printed',
      ),
  })
  .strict();
export type RemoteStudio = z.output<typeof RemoteStudioSchema>;

/** "http://127.0.0.1:5178/?token=abc…" (what serve prints) as address and token; undefined when it is not one. */
export function splitStudioUrl(text: string): { address: string; token: string } | undefined {
  try {
    const url = new URL(text.trim());
    const token = url.searchParams.get('token');
    return token ? { address: url.origin, token } : undefined;
  } catch {
    return undefined;
  }
}

/** The page of a remote studio: its renderer, served by its engine, with the token. */
export function remoteStudioUrl(remote: RemoteStudio): string {
  return `${remote.address}/?token=${encodeURIComponent(remote.token)}`;
}
