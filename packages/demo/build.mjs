// Bundles the demo page and the browser build of the SDK into dist/, which the server serves at /.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';

await mkdir('dist', { recursive: true });
await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  outfile: 'dist/app.js',
  logLevel: 'warning',
});
await copyFile('src/index.html', 'dist/index.html');
