/**
 * A face's end of the page's channel, for both faces: the Electron main process (the page's
 * calls come through the preload, which has checked them) and serve mode's server (the page's
 * calls come straight off a WebSocket, and the server checks them). Every call but the folder
 * dialog and the desktop app's remote studios goes on to the engine; those are the face's own,
 * and the folder the user picks is handed to the engine once (allowFolder) before the page
 * hears of it.
 */
import { ApiError, STUDIO_CONTRACT, type StudioContract, type StudioRequest } from '../../shared/api.js';
import { Answerer } from '../../shared/peer.js';
import { parseRequest } from '../../shared/protocol.js';
import type { EngineRelay } from './engineRelay.js';

export type FolderPurpose = StudioRequest<'chooseFolder'>['purpose'];

export interface PageChannelOptions {
  /** Whether this face is the page's trust boundary (serve mode), or the preload is (Electron). */
  validates: boolean;
  /** The native folder dialog (undefined: cancelled); without one the page types paths and is answered {}. */
  chooseFolder?(purpose: FolderPurpose): Promise<string | undefined>;
  /** Remote studios (the desktop app); without them the page is told only the desktop app opens one. */
  remote?: {
    connect(request: StudioRequest<'connectRemote'>): Promise<void>;
    saved(): Promise<{ address?: string }>;
  };
  /** A message that is no call at all (it has no id to answer). */
  onProtocolError?(message: string): void;
}

export function pageChannel(engine: EngineRelay, options: PageChannelOptions): Answerer<StudioContract> {
  const { chooseFolder } = options;
  return new Answerer({
    contract: STUDIO_CONTRACT,
    validates: options.validates,
    ...(options.onProtocolError ? { onProtocolError: options.onProtocolError } : {}),
    forward: async (method, payload) => {
      if (method === 'connectRemote' || method === 'savedRemote') {
        const { remote } = options;
        if (!remote) throw new ApiError(`${method}: only the desktop app connects to a remote studio`);
        if (method === 'savedRemote') return remote.saved();
        await remote.connect(parseRequest(STUDIO_CONTRACT, method, payload));
        return {};
      }
      if (method !== 'chooseFolder') return engine.forward(method, payload);
      if (!chooseFolder) return {};
      // The one call a face carries out itself, so it checks it (again, on the desktop) before acting on it.
      const path = await chooseFolder(parseRequest(STUDIO_CONTRACT, method, payload).purpose);
      if (!path) return {};
      await engine.call('allowFolder', { path });
      return { path };
    },
  });
}
