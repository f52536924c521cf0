/**
 * The remote studio the desktop app remembers: address and token encrypted by the OS keychain
 * and only ciphertext on disk. Electron's safeStorage needs the Electron binary, which is not
 * installed here; an AES-256-GCM cipher with a key held in memory plays the keychain's part
 * (safeStorage is the same thing with the key in the OS keychain).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RemoteStudioSchema, remoteStudioUrl, splitStudioUrl } from '../../../shared/remote.js';
import {
  isRemoteNavigation,
  RemoteStudioStore,
  remoteToConnect,
  type KeychainCipher,
} from '../../../electron/main/remoteStudio.js';

function keychain(available = true): KeychainCipher {
  const key = randomBytes(32);
  return {
    isEncryptionAvailable: () => available,
    encryptString(text) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
      return Buffer.concat([iv, cipher.getAuthTag(), body]);
    },
    decryptString(data) {
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
      decipher.setAuthTag(data.subarray(12, 28));
      return Buffer.concat([decipher.update(data.subarray(28)), decipher.final()]).toString('utf8');
    },
  };
}

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mw-remote-'));
  dirs.push(dir);
  return dir;
}

const TOKEN = 'c0ffee00c0ffee00c0ffee00c0ffee00';
const remote = RemoteStudioSchema.parse({ address: 'http://127.0.0.1:5178/', token: TOKEN });

describe('the remote studio kept by the desktop app', () => {
  it('keeps address and token as ciphertext only, and reads them back', async () => {
    const file = join(await tempDir(), 'remote-studio.bin');
    const store = new RemoteStudioStore(file, keychain());
    expect(await store.load()).toBeUndefined();
    await store.save(remote);
    const bytes = await readFile(file);
    expect(bytes.includes(Buffer.from(TOKEN))).toBe(false);
    expect(bytes.includes(Buffer.from('127.0.0.1'))).toBe(false);
    expect(await store.load()).toEqual({ address: 'http://127.0.0.1:5178', token: TOKEN });
    await store.forget();
    expect(await store.load()).toBeUndefined();
  });

  it('writes nothing when no keychain can encrypt, and reads nothing another keychain wrote or a damaged file', async () => {
    const dir = await tempDir();
    const file = join(dir, 'remote-studio.bin');
    await expect(new RemoteStudioStore(file, keychain(false)).save(remote)).rejects.toThrow(/no OS keychain/);
    expect(await readdir(dir)).toEqual([]);
    await new RemoteStudioStore(file, keychain()).save(remote);
    expect(await new RemoteStudioStore(file, keychain()).load()).toBeUndefined();
    await writeFile(file, 'not a ciphertext');
    expect(await new RemoteStudioStore(file, keychain()).load()).toBeUndefined();
  });

  it("takes only a loopback tunnel's address and serve's token; an empty token reuses the one kept for that address", () => {
    expect(remoteToConnect({ address: ' http://localhost:9000 ', token: TOKEN }, undefined)).toEqual({
      address: 'http://localhost:9000',
      token: TOKEN,
    });
    expect(() => remoteToConnect({ address: 'http://login.cluster.example:5178', token: TOKEN }, undefined)).toThrow(
      /this machine's end of an SSH tunnel/,
    );
    expect(() => remoteToConnect({ address: 'https://127.0.0.1:5178', token: TOKEN }, undefined)).toThrow(/SSH tunnel/);
    expect(() => remoteToConnect({ address: 'http://127.0.0.1', token: TOKEN }, undefined)).toThrow(/SSH tunnel/);
    expect(() => remoteToConnect({ address: 'nonsense', token: TOKEN }, undefined)).toThrow(/like http:\/\/127/);
    expect(() => remoteToConnect({ address: 'http://127.0.0.1:5178', token: 'a b' }, undefined)).toThrow(
      /the token is the letters and digits/,
    );
    expect(remoteToConnect({ address: 'http://127.0.0.1:5178', token: '' }, remote)).toEqual(remote);
    expect(() => remoteToConnect({ address: 'http://127.0.0.1:6000', token: '' }, remote)).toThrow(/token/);
    expect(() => remoteToConnect({ address: 'http://127.0.0.1:5178', extra: 1, token: TOKEN }, remote)).toThrow();
  });

  it("opens serve's page with the token and keeps the window on that studio", () => {
    expect(remoteStudioUrl(remote)).toBe(`http://127.0.0.1:5178/?token=${TOKEN}`);
    expect(splitStudioUrl(`http://127.0.0.1:5178/?token=${TOKEN}`)).toEqual({
      address: 'http://127.0.0.1:5178',
      token: TOKEN,
    });
    expect(splitStudioUrl('http://127.0.0.1:5178/')).toBeUndefined();
    expect(isRemoteNavigation(remote, 'http://127.0.0.1:5178/?token=x#study')).toBe(true);
    expect(isRemoteNavigation(remote, 'http://127.0.0.1:5179/')).toBe(false);
    expect(isRemoteNavigation(remote, 'https://evil.example/')).toBe(false);
    expect(isRemoteNavigation(remote, 'not a url')).toBe(false);
  });
});
