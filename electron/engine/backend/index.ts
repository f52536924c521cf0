/** The compute backend: which one runs (choice.ts), started how (candidates.ts), said how (description.ts). */
export { initBackend } from './choice.js';
export { describeBackend, summarizeBackend } from './description.js';
export {
  BACKEND_PREFERENCES,
  parseBackendPreference,
  type BackendInfo,
  type BackendName,
  type BackendPreference,
} from './preferences.js';
