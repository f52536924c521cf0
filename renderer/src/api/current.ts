/**
 * The StudioApi the stores use, set once at start-up (tests set a fake). A module-level slot
 * rather than a global lookup, so nothing reachable from the stores touches `window`.
 */
import type { StudioApi } from '../../../shared/api.js';

let current: StudioApi | undefined;

export function provideStudioApi(api: StudioApi): void {
  current = api;
}

export function useStudioApi(): StudioApi {
  if (!current) throw new Error('no StudioApi: call provideStudioApi() before using the stores');
  return current;
}
