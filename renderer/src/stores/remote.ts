/**
 * The desktop app's "Connect to a remote studio" form (File menu, whose command opens it): the
 * address of an SSH tunnel's local end and the token `mw-studio serve` printed on the cluster's
 * login node. The app's main process checks them again, keeps them encrypted by the OS keychain and opens that studio in a
 * window of its own. Pasting the whole printed address fills both fields.
 */
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import { RemoteStudioSchema, splitStudioUrl } from '../../../shared/remote.js';
import { useStudioApi } from '../api/current.js';
import { useStudioStore } from './studio.js';

export const useRemoteStore = defineStore('remote', () => {
  const api = useStudioApi();
  const studio = useStudioStore();

  const open = ref(false);
  const address = ref('');
  const token = ref('');
  /** The address kept from the last connection: its token is kept too, so the field may stay empty. */
  const keptAddress = ref<string>();
  const connecting = ref(false);

  const errors = computed(() => {
    const reusesToken = token.value.trim() === '' && keptAddress.value !== undefined;
    const parsed = RemoteStudioSchema.safeParse({
      address: address.value,
      token: reusesToken ? 'kept-token-placeholder' : token.value,
    });
    const found: Partial<Record<'address' | 'token', string>> = {};
    if (!parsed.success)
      for (const issue of parsed.error.issues) found[issue.path[0] as 'address' | 'token'] ??= issue.message;
    if (reusesToken && !found.address && parsed.data?.address !== keptAddress.value)
      found.token = 'give the token for this address';
    return found;
  });
  const valid = computed(() => !errors.value.address && !errors.value.token);

  async function show(): Promise<void> {
    open.value = true;
    const kept = await api.savedRemote({}).catch(() => ({}) as { address?: string });
    keptAddress.value = kept.address;
    if (kept.address && !address.value) address.value = kept.address;
  }

  api.onEvent((event) => {
    if (event.type === 'menu-command' && event.command === 'connect-remote') void show();
  });

  function close(): void {
    open.value = false;
    token.value = '';
  }

  /** The address field; a pasted "http://127.0.0.1:5178/?token=…" fills the token as well. */
  function setAddress(text: string): void {
    const split = splitStudioUrl(text);
    address.value = split ? split.address : text;
    if (split) token.value = split.token;
  }

  function setToken(text: string): void {
    token.value = text;
  }

  async function connect(): Promise<boolean> {
    if (!valid.value) return false;
    const connected = await studio.attempt(
      'Could not connect to the remote studio',
      () => api.connectRemote({ address: address.value, token: token.value.trim() }),
      connecting,
    );
    if (connected) close();
    return connected;
  }

  return {
    open,
    address,
    token,
    keptAddress,
    connecting,
    errors,
    valid,
    show,
    close,
    setAddress,
    setToken,
    connect,
  };
});
