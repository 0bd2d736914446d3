// Builds the transport bench page (bench/transport/index.html) on its own, apart from the app's config and plugins.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  logLevel: 'warn',
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: false, emptyOutDir: true, reportCompressedSize: false },
});
