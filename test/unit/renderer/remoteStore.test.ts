/**
 * The desktop app's remote-studio form as its store runs it: opened by the File menu's command,
 * a pasted serve address filling both fields, each field checked by the shared rules, the
 * connection asked of the app's main process (connectRemote), its refusal shown.
 */
import { createPinia, setActivePinia } from 'pinia';
import { describe, expect, it } from 'vitest';
import { provideStudioApi } from '../../../renderer/src/api/current.js';
import { useRemoteStore } from '../../../renderer/src/stores/remote.js';
import { useStudioStore } from '../../../renderer/src/stores/studio.js';
import { fakeStudio } from './fixtures.js';

const TOKEN = '0123456789abcdef0123456789abcdef';

function remoteStore(kept: { address?: string } = {}, refuse?: string) {
  const connections: { address: string; token: string }[] = [];
  const studio = fakeStudio({
    connectRemote: (remote) => {
      if (refuse) throw new Error(refuse);
      connections.push(remote);
      return {};
    },
    savedRemote: () => kept,
  });
  provideStudioApi(studio.api);
  setActivePinia(createPinia());
  return { studio, connections, remote: useRemoteStore() };
}

const settle = () => new Promise((done) => setTimeout(done, 0));

describe('the remote studio form', () => {
  it("opens on the menu's command, fills both fields from serve's printed address, and connects", async () => {
    const { studio, connections, remote } = remoteStore();
    expect(remote.open).toBe(false);
    studio.push({ type: 'menu-command', command: 'connect-remote' });
    await settle();
    expect(remote.open).toBe(true);
    expect(remote.valid).toBe(false);
    remote.setAddress(`http://127.0.0.1:5178/?token=${TOKEN}`);
    expect([remote.address, remote.token]).toEqual(['http://127.0.0.1:5178', TOKEN]);
    expect(remote.errors).toEqual({});
    expect(await remote.connect()).toBe(true);
    expect(connections).toEqual([{ address: 'http://127.0.0.1:5178', token: TOKEN }]);
    expect(remote.open).toBe(false);
    expect(remote.token).toBe('');
  });

  it('names the problem at its field, and sends nothing while there is one', async () => {
    const { connections, remote } = remoteStore();
    await remote.show();
    remote.setAddress('http://login.cluster.example:5178');
    remote.setToken('not a token');
    expect(remote.errors.address).toMatch(/this machine's end of an SSH tunnel/);
    expect(remote.errors.token).toMatch(/the token is the letters and digits/);
    expect(await remote.connect()).toBe(false);
    expect(connections).toEqual([]);
  });

  it('fills in the address kept, whose token may then stay empty; another address needs its token', async () => {
    const { connections, remote } = remoteStore({ address: 'http://127.0.0.1:5178' });
    await remote.show();
    expect(remote.address).toBe('http://127.0.0.1:5178');
    expect(remote.errors).toEqual({});
    remote.setAddress('http://127.0.0.1:6000');
    expect(remote.errors).toEqual({ token: 'give the token for this address' });
    remote.setAddress('http://127.0.0.1:5178');
    expect(await remote.connect()).toBe(true);
    expect(connections).toEqual([{ address: 'http://127.0.0.1:5178', token: '' }]);
  });

  it("shows the app's refusal and keeps the form open", async () => {
    const { remote } = remoteStore({}, 'no OS keychain is available to keep the token');
    await remote.show();
    remote.setAddress(`http://127.0.0.1:5178/?token=${TOKEN}`);
    expect(await remote.connect()).toBe(false);
    expect(remote.open).toBe(true);
    expect(useStudioStore().toasts.map((t) => t.text)).toEqual([
      'Could not connect to the remote studio: no OS keychain is available to keep the token',
    ]);
  });
});
