import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { VitePWA } from 'vite-plugin-pwa';

// `npm run dev` serves the app with hot reload and sends API and signalling to a coordinator on :8787.
const coordinator = process.env.ERGON_COORDINATOR ?? 'http://127.0.0.1:8787';

export default defineConfig({
  plugins: [
    svelte(),
    // The installable shell: a generated service worker precaches the built page, worker and icons, so the page
    // opens offline and shows the earnings kept in IndexedDB. It never caches the API or signalling: work,
    // receipts and config must come from a live coordinator. A new version waits for the person ('prompt').
    VitePWA({
      registerType: 'prompt',
      injectRegister: false,
      manifest: {
        name: 'Ergon miner',
        short_name: 'Ergon',
        description: "Lend this device's GPU to verified AI work, when you choose, and earn signed receipts.",
        start_url: '/',
        scope: '/',
        display: 'standalone',
        background_color: '#0b1120',
        theme_color: '#14213d',
        icons: [
          { src: 'pwa-64x64.png', sizes: '64x64', type: 'image/png' },
          { src: 'pwa-192x192.png', sizes: '192x192', type: 'image/png' },
          { src: 'pwa-512x512.png', sizes: '512x512', type: 'image/png' },
          { src: 'maskable-icon-512x512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      workbox: {
        globPatterns: ['**/*.{js,css,html,svg,png,ico,webmanifest}'],
        navigateFallback: '/index.html',
        navigateFallbackDenylist: [/^\/api\//, /^\/peerjs/, /^\/operator/, /^\/metrics/],
        // Source maps are for developers, not worth precaching.
        // The operator's page is not part of the miner's app: never precached, and its navigation goes to the network.
        globIgnores: ['**/*.map', 'operator.html', 'assets/operator-*'],
        // onnxruntime-web's .wasm (14 MB for the WASM EP, 27 MB more for the WebGPU build) is not precached: every
        // install would download 41 MB, needed only by a device that mines onnx. It is kept on first use instead, by
        // its hashed (immutable) name, so a later visit, or one offline, loads it from Cache Storage.
        runtimeCaching: [
          {
            urlPattern: ({ url }) => url.pathname.startsWith('/assets/') && url.pathname.endsWith('.wasm'),
            handler: 'CacheFirst',
            options: { cacheName: 'ergon-ort-wasm-v1', expiration: { maxEntries: 8 } },
          },
        ],
        cleanupOutdatedCaches: true,
      },
    }),
  ],
  worker: { format: 'es' },
  // The dev server's dependency scan starts from the HTML pages and does not follow `new Worker(new URL(...))`: left
  // to itself, it found the worker's onnxruntime-web only when a page first loaded the worker, then re-bundled and
  // reloaded that page under the test driving it. Scanning the worker too bundles everything before the first page.
  optimizeDeps: { entries: ['index.html', 'operator.html', 'tests/e2e/harness/*.html', 'src/miner/worker.ts'] },
  // Two pages: the miner's (index.html) and the operator's (operator.html, src/operator/).
  build: { target: 'es2022', sourcemap: true, rollupOptions: { input: { index: 'index.html', operator: 'operator.html' } } },
  server: {
    proxy: {
      '/api': coordinator,
      '/metrics': coordinator,
      '/peerjs': { target: coordinator, ws: true },
    },
  },
});
