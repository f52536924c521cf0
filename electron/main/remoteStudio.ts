/**
 * The remote studio the desktop app last connected to, kept for the next start: address and
 * token encrypted by the OS keychain (Electron's safeStorage: the Keychain on macOS, DPAPI on
 * Windows, the Secret Service or KWallet on Linux) and only the ciphertext on disk. Where no
 * keychain is available nothing is kept: the token is never written in a plain file. No
 * Electron import: the main process hands in safeStorage, tests a cipher of their own.
 */
import { readFile, rm } from 'node:fs/promises';
import { RemoteStudioSchema, type RemoteStudio } from '../../shared/remote.js';
import { writeFileAtomic } from '../base/files.js';

/** The part of Electron's safeStorage used here. */
export interface KeychainCipher {
  isEncryptionAvailable(): boolean;
  encryptString(plainText: string): Buffer;
  decryptString(encrypted: Buffer): string;
}

export class RemoteStudioStore {
  constructor(
    private readonly file: string,
    private readonly cipher: KeychainCipher,
  ) {}

  /** Keeps `remote`; throws, writing nothing, when no keychain can encrypt it. */
  async save(remote: RemoteStudio): Promise<void> {
    if (!this.cipher.isEncryptionAvailable())
      throw new Error(
        'no OS keychain is available to keep the token (on Linux: a Secret Service such as gnome-keyring, or KWallet); the connection works but is not remembered',
      );
    await writeFileAtomic(this.file, this.cipher.encryptString(JSON.stringify(remote)));
  }

  /** The kept remote studio; undefined when none is kept or it cannot be read back (another keychain, a damaged file). */
  async load(): Promise<RemoteStudio | undefined> {
    let encrypted: Buffer;
    try {
      encrypted = await readFile(this.file);
    } catch {
      return undefined;
    }
    try {
      return RemoteStudioSchema.parse(JSON.parse(this.cipher.decryptString(encrypted)));
    } catch {
      return undefined;
    }
  }

  async forget(): Promise<void> {
    await rm(this.file, { force: true });
  }
}

/**
 * The address and token the page sent, checked; a token left empty means the kept one for the
 * same address (the form shows the address kept, never the token).
 */
export function remoteToConnect(given: unknown, kept: RemoteStudio | undefined): RemoteStudio {
  const fields = (given ?? {}) as { address?: unknown; token?: unknown };
  const reuse =
    kept && fields.token === '' && RemoteStudioSchema.shape.address.safeParse(fields.address).data === kept.address;
  const parsed = RemoteStudioSchema.safeParse(reuse ? { address: fields.address, token: kept.token } : given);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => i.message).join('; '));
  return parsed.data;
}

/** Where the window of a remote studio may go: its own pages (same origin) and nothing else. */
export function isRemoteNavigation(remote: RemoteStudio, url: string): boolean {
  try {
    return new URL(url).origin === remote.address;
  } catch {
    return false;
  }
}
