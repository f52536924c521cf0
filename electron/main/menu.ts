/** The application menu as data; the main process supplies what its items do. */
import type { MenuItemConstructorOptions } from 'electron';

export interface MenuActions {
  newRun(): void;
  /** Shows the page's form for a remote studio (serve mode on a cluster, through an SSH tunnel). */
  connectRemote(): void;
  openRunsFolder(): void;
  about(): void;
}

export interface MenuOptions {
  isMac: boolean;
  /** Reload and the developer tools are for working on the studio, not for its users. */
  isDev: boolean;
  actions: MenuActions;
}

export function applicationMenu({ isMac, isDev, actions }: MenuOptions): MenuItemConstructorOptions[] {
  const file: MenuItemConstructorOptions = {
    label: 'File',
    submenu: [
      { label: 'New Run', click: () => actions.newRun() },
      { label: 'Open Runs Folder', click: () => actions.openRunsFolder() },
      { label: 'Connect to a Remote Studio…', click: () => actions.connectRemote() },
      { type: 'separator' },
      // On macOS, Quit lives in the application menu.
      isMac ? { role: 'close' } : { role: 'quit' },
    ],
  };
  const view: MenuItemConstructorOptions = {
    label: 'View',
    submenu: [{ role: 'reload' }, { role: 'forceReload' }, { role: 'toggleDevTools' }],
  };
  const help: MenuItemConstructorOptions = {
    role: 'help',
    submenu: [{ label: 'About Mw Studio', click: () => actions.about() }],
  };
  return [
    ...(isMac ? [{ role: 'appMenu' } as const] : []),
    file,
    // Copy and paste in the form fields: on macOS these shortcuts work only through an Edit menu.
    { role: 'editMenu' },
    ...(isDev ? [view] : []),
    help,
  ];
}
