/** Builds the studio's renderer (Vue SFCs, precompiled: the page runs under a CSP without unsafe-eval). */
import { fileURLToPath } from 'node:url';
import vue from '@vitejs/plugin-vue';
import { defineConfig, type Plugin } from 'vite';

// Absolute paths, so the build works from any working directory.
const fromRoot = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * The dev server injects component styles as <style> elements, which the page's CSP refuses;
 * it is relaxed for the dev server only. The built page keeps style-src 'self'.
 */
const devServerStyles: Plugin = {
  name: 'mw-studio-dev-server-styles',
  apply: 'serve',
  transformIndexHtml: (html) => html.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"),
};

export default defineConfig({
  root: fromRoot('./renderer'),
  // Relative asset URLs: Electron loads the page from file://, serve mode from http://127.0.0.1.
  base: './',
  plugins: [vue(), devServerStyles],
  define: {
    // The renderer uses the Composition API only; dropping the Options API shrinks the bundle.
    __VUE_OPTIONS_API__: 'false',
    __VUE_PROD_DEVTOOLS__: 'false',
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false',
  },
  build: {
    outDir: fromRoot('./out/renderer'),
    emptyOutDir: true,
    target: 'es2022',
  },
});
