import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// `npm run dev` serves the app with hot reload and sends API and signalling to a coordinator on :8787.
const coordinator = process.env.ERGON_COORDINATOR ?? 'http://127.0.0.1:8787';

export default defineConfig({
  plugins: [svelte()],
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true },
  server: {
    proxy: {
      '/api': coordinator,
      '/peerjs': { target: coordinator, ws: true },
    },
  },
});
