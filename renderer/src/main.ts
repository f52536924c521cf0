// First: zod must be told before any schema is built that this page may not evaluate code (CSP).
import './zodJitless.js';
import { createPinia } from 'pinia';
import { createApp } from 'vue';
import App from './App.vue';
import { provideStudioApi } from './api/current.js';
import { studioApi } from './api/studioApi.js';
import './styles.css';

// Protocol errors are bugs on one side or the other: worth the console, not the user's attention.
provideStudioApi(studioApi((message) => console.warn(`[studio socket] ${message}`)));
createApp(App).use(createPinia()).mount('#app');
